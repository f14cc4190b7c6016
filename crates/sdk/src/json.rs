//! A tiny JSON text writer: objects of string and number fields, nothing else.
//!
//! The SDK hands the loader small JSON texts (the touchpoint context, counters) that the
//! browser's `JSON.parse` reads. Writing them by hand keeps serde and `core::fmt` out of
//! the wasm, and one string crossing the boundary is cheaper than building a JavaScript
//! object field by field. Plain Rust, tested natively.

use alloc::string::String;

use weft_core::text::push_decimal;

/// Builds one JSON object.
#[derive(Debug, Default)]
pub struct Obj {
    text: String,
}

impl Obj {
    /// An empty object.
    pub fn new() -> Obj {
        Obj {
            text: String::from("{"),
        }
    }

    fn key(&mut self, key: &str) {
        if self.text.len() > 1 {
            self.text.push(',');
        }
        quote(&mut self.text, key);
        self.text.push(':');
    }

    /// Adds a string field.
    pub fn str(&mut self, key: &str, value: &str) -> &mut Obj {
        self.key(key);
        quote(&mut self.text, value);
        self
    }

    /// Adds an integer field.
    pub fn int(&mut self, key: &str, value: i64) -> &mut Obj {
        self.key(key);
        push_decimal(&mut self.text, value);
        self
    }

    /// Adds `true` or `false`.
    pub fn bool(&mut self, key: &str, value: bool) -> &mut Obj {
        self.key(key);
        self.text.push_str(if value { "true" } else { "false" });
        self
    }

    /// Adds a field whose value is JSON text already.
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Obj {
        self.key(key);
        self.text.push_str(json);
        self
    }

    /// The object's text.
    pub fn end(&mut self) -> String {
        let mut text = core::mem::take(&mut self.text);
        text.push('}');
        text
    }
}

/// Appends `value` as a JSON string: quotes, backslashes and control characters escaped.
pub fn quote(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    // Copies the runs between escaped bytes; those are ASCII, so every cut falls on a
    // character boundary.
    let mut start = 0;
    for (i, byte) in value.bytes().enumerate() {
        if byte != b'"' && byte != b'\\' && byte >= 0x20 {
            continue;
        }
        out.push_str(&value[start..i]);
        start = i + 1;
        out.push('\\');
        match byte {
            b'"' | b'\\' => out.push(char::from(byte)),
            b'\n' => out.push('n'),
            _ => {
                out.push_str("u00");
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 15)]));
            }
        }
    }
    out.push_str(&value[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_valid_json_with_escapes() {
        let text = Obj::new()
            .str("a", "plain")
            .str("b", "q\"u\\o\nte\u{1}é")
            .int("n", -42)
            .bool("t", true)
            .raw("o", "{\"x\":1}")
            .end();
        assert_eq!(
            text,
            "{\"a\":\"plain\",\"b\":\"q\\\"u\\\\o\\nte\\u0001é\",\"n\":-42,\"t\":true,\"o\":{\"x\":1}}"
        );
        assert_eq!(Obj::new().end(), "{}");
    }
}
