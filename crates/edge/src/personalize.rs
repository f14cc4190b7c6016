//! Personalising the first HTML response: page changes by segment, applied at the edge.
//!
//! When the worker fronts a site (its bundled `www/` assets, or an origin it proxies), the
//! file `personalize.json` at the repository root maps segments to page changes: a CSS
//! selector and what to do to the matching elements (replace them, set their content, set
//! an attribute, remove them). For a page request the worker reads the visitor's decision
//! doc from KV (one read, by the `weft_sid` or `weft_aid` cookie) and streams the page
//! through the runtime's `HTMLRewriter` with the changes of the segments the visitor is
//! in. The first response is already personalised: no flicker and no client code.
//!
//! ```json
//! {"origin": "",
//!  "rules": [{"segment": "paid-pricing-interest", "selector": "#offer",
//!             "replace": "<aside id=\"offer\">20% off annual plans</aside>"}]}
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::{Env, Headers, Request, Response, ResponseBuilder};

use crate::error::ApiError;
use crate::{cookies, decide};

/// The text of `personalize.json` as it was when the worker was built.
pub const PERSONALIZE_JSON: &str = include_str!("../../../personalize.json");

/// The site the worker fronts and the changes it makes per segment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// A comment for the people editing the file.
    #[serde(default, rename = "$comment")]
    pub comment: Option<String>,
    /// The origin to proxy (`https://www.example.com`); empty serves the bundled `www/`.
    #[serde(default)]
    pub origin: String,
    /// The page changes.
    #[serde(default)]
    pub rules: Vec<Change>,
}

/// One page change for the members of a segment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// The segment whose members see the change.
    pub segment: String,
    /// A CSS selector, as HTMLRewriter takes it.
    pub selector: String,
    /// Replace each matching element with this HTML.
    #[serde(default)]
    pub replace: Option<String>,
    /// Set each matching element's content to this HTML.
    #[serde(default)]
    pub inner: Option<String>,
    /// Set this attribute on each matching element (to `value`).
    #[serde(default)]
    pub attribute: Option<String>,
    /// The attribute's value.
    #[serde(default)]
    pub value: Option<String>,
    /// Remove each matching element.
    #[serde(default)]
    pub remove: bool,
}

impl Site {
    /// Reads and checks a personalisation file.
    ///
    /// # Errors
    /// A message naming the rule at fault.
    pub fn parse(text: &str) -> Result<Site, String> {
        let site: Site =
            serde_json::from_str(text).map_err(|e| format!("personalize.json: {e}"))?;
        for (i, rule) in site.rules.iter().enumerate() {
            let actions = usize::from(rule.replace.is_some())
                + usize::from(rule.inner.is_some())
                + usize::from(rule.attribute.is_some())
                + usize::from(rule.remove);
            if actions != 1 {
                return Err(format!(
                    "personalize.json: rules[{i}]: give exactly one of replace, inner, \
                     attribute (with value) or remove (got {actions})"
                ));
            }
            if rule.attribute.is_some() != rule.value.is_some() {
                return Err(format!(
                    "personalize.json: rules[{i}]: attribute needs a value"
                ));
            }
            if rule.selector.trim().is_empty() || rule.segment.trim().is_empty() {
                return Err(format!(
                    "personalize.json: rules[{i}]: selector and segment are required"
                ));
            }
        }
        Ok(site)
    }

    /// The bundled file, parsed once; an unreadable file personalises nothing (and a test
    /// checks the bundled one).
    pub fn bundled() -> &'static Site {
        static SITE: OnceLock<Site> = OnceLock::new();
        SITE.get_or_init(|| Site::parse(PERSONALIZE_JSON).unwrap_or_default())
    }

    /// The indexes of the changes that apply to a visitor in `segments`.
    pub fn changes_for(&self, segments: &[String]) -> Vec<usize> {
        (0..self.rules.len())
            .filter(|&i| segments.contains(&self.rules[i].segment))
            .collect()
    }
}

#[wasm_bindgen]
extern "C" {
    /// The runtime's streaming HTML rewriter.
    type HTMLRewriter;

    #[wasm_bindgen(constructor)]
    fn new() -> HTMLRewriter;

    #[wasm_bindgen(method)]
    fn on(this: &HTMLRewriter, selector: &str, handlers: &js_sys::Object) -> HTMLRewriter;

    #[wasm_bindgen(method)]
    fn transform(this: &HTMLRewriter, response: &web_sys::Response) -> web_sys::Response;

    /// An element HTMLRewriter hands to a handler.
    type Element;

    #[wasm_bindgen(method)]
    fn replace(this: &Element, content: &str, options: &js_sys::Object);

    #[wasm_bindgen(method, js_name = setInnerContent)]
    fn set_inner_content(this: &Element, content: &str, options: &js_sys::Object);

    #[wasm_bindgen(method, js_name = setAttribute)]
    fn set_attribute(this: &Element, name: &str, value: &str);

    #[wasm_bindgen(method)]
    fn remove(this: &Element);
}

thread_local! {
    // One handler object per change, made once per isolate: the changes are fixed at
    // build time, so no closure is made (or leaked) per request.
    static HANDLERS: RefCell<HashMap<usize, js_sys::Object>> = RefCell::new(HashMap::new());
}

fn handler(index: usize, change: &Change) -> js_sys::Object {
    HANDLERS.with(|cache| {
        cache
            .borrow_mut()
            .entry(index)
            .or_insert_with(|| {
                let change = change.clone();
                let element = Closure::<dyn Fn(JsValue)>::new(move |el: JsValue| {
                    let el: Element = el.unchecked_into();
                    let html = js_sys::Object::new();
                    let _ = js_sys::Reflect::set(&html, &"html".into(), &JsValue::TRUE);
                    if let Some(content) = &change.replace {
                        el.replace(content, &html);
                    } else if let Some(content) = &change.inner {
                        el.set_inner_content(content, &html);
                    } else if let (Some(name), Some(value)) = (&change.attribute, &change.value) {
                        el.set_attribute(name, value);
                    } else if change.remove {
                        el.remove();
                    }
                });
                let handlers = js_sys::Object::new();
                let _ = js_sys::Reflect::set(&handlers, &"element".into(), element.as_ref());
                // The closure lives as long as the isolate, like the cache holding it.
                element.forget();
                handlers
            })
            .clone()
    })
}

/// Serves a page of the fronted site, personalised for the visitor.
pub async fn page(req: Request, env: &Env) -> Result<Response, ApiError> {
    let site = Site::bundled();
    let cookie_header = req
        .headers()
        .get("cookie")
        .ok()
        .flatten()
        .unwrap_or_default();
    let sid = cookies::get(&cookie_header, cookies::SID);
    let secure = req.url().map(|u| u.scheme() == "https").unwrap_or(false);

    let upstream = if site.origin.is_empty() {
        env.assets("ASSETS")?.fetch_request(req).await?
    } else {
        let url = req.url()?;
        let target = format!(
            "{}{}{}",
            site.origin.trim_end_matches('/'),
            url.path(),
            url.query().map(|q| format!("?{q}")).unwrap_or_default()
        );
        let proxied = Request::new_with_init(&target, &worker::RequestInit::new())?;
        worker::Fetch::Request(proxied).send().await?
    };
    let is_html = upstream
        .headers()
        .get("content-type")
        .ok()
        .flatten()
        .is_some_and(|t| t.starts_with("text/html"));
    if !is_html {
        return Ok(upstream);
    }

    let visitor = sid
        .clone()
        .or_else(|| cookies::get(&cookie_header, cookies::AID));
    let segments = match (&visitor, site.rules.is_empty()) {
        (Some(id), false) => {
            let doc = env
                .kv(decide::KV_BINDING)?
                .get(&decide::anonymous_key(id))
                .text()
                .await?;
            doc.and_then(|d| weft_core::segment::Decision::from_slice(d.as_bytes()).ok())
                .map(|d| d.segments)
                .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let changes = site.changes_for(&segments);

    let upstream = if changes.is_empty() {
        upstream
    } else {
        let rewriter = HTMLRewriter::new();
        for &i in &changes {
            rewriter.on(&site.rules[i].selector, &handler(i, &site.rules[i]));
        }
        let raw: web_sys::Response = upstream.into();
        Response::from(rewriter.transform(&raw))
    };
    // Responses from the assets binding or an origin have immutable headers: answer with
    // a copy of them around the same streamed body.
    let status = upstream.status_code();
    let copied = Headers::new();
    for (name, value) in upstream.headers().entries() {
        copied.append(&name, &value)?;
    }
    let (_, body) = upstream.into_parts();
    let mut res = ResponseBuilder::new()
        .with_status(status)
        .with_headers(copied)
        .body(body);
    let headers = res.headers_mut();
    // The page differs per visitor: never let a shared cache keep it.
    headers.set("cache-control", "private, no-store")?;
    if sid.is_none() {
        let domain = &crate::config::Config::bundled().collector.cookie_domain;
        let cookie = cookies::new_sid_cookie(domain, secure).map_err(ApiError::Internal)?;
        headers.append("set-cookie", &cookie)?;
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_file_parses_and_names_known_segments() {
        let site = Site::parse(PERSONALIZE_JSON).unwrap();
        assert!(!site.rules.is_empty());
        assert!(site
            .rules
            .iter()
            .any(|r| r.segment == "paid-pricing-interest"));
    }

    #[test]
    fn changes_apply_by_segment() {
        let site = Site::parse(
            r##"{"rules":[
              {"segment":"a","selector":"#x","replace":"<b>a</b>"},
              {"segment":"b","selector":"body","attribute":"data-b","value":"1"},
              {"segment":"a","selector":".gone","remove":true}]}"##,
        )
        .unwrap();
        assert_eq!(site.changes_for(&["a".into()]), [0, 2]);
        assert_eq!(site.changes_for(&["b".into(), "c".into()]), [1]);
        assert!(site.changes_for(&[]).is_empty());
    }

    #[test]
    fn bad_rules_are_named() {
        let cases = [
            (
                r##"{"rules":[{"segment":"a","selector":"#x"}]}"##,
                "rules[0]: give exactly one",
            ),
            (
                r##"{"rules":[{"segment":"a","selector":"#x","remove":true,"inner":"x"}]}"##,
                "got 2",
            ),
            (
                r##"{"rules":[{"segment":"a","selector":"#x","attribute":"id"}]}"##,
                "needs a value",
            ),
            (
                r##"{"rules":[{"segment":"a","selector":" ","remove":true}]}"##,
                "selector and segment",
            ),
            (r##"{"rules":[],"extra":1}"##, "unknown field"),
        ];
        for (text, want) in cases {
            let err = Site::parse(text).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
    }
}
