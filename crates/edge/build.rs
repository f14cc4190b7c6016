//! Bundles the workspace's segment files (`segments/*.json` at the repository root) into
//! the worker, and checks them and `weft.toml` at build time so a bad file fails the
//! build instead of a request.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    // Read when the script runs, not baked in when it is compiled: a build script binary
    // is reused by checkouts at other paths that share a target folder.
    let manifest =
        env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|e| panic!("CARGO_MANIFEST_DIR: {e}"));
    let root = Path::new(&manifest).join("../..");
    let segments_dir = root.join("segments");
    let config = root.join("weft.toml");
    println!("cargo:rerun-if-changed={}", segments_dir.display());
    println!("cargo:rerun-if-changed={}", config.display());

    let text = fs::read_to_string(&config).unwrap_or_else(|e| panic!("weft.toml: {e}"));
    if let Err(e) = text.parse::<toml::Table>() {
        panic!("weft.toml is not valid TOML: {e}");
    }

    let mut files: Vec<_> = fs::read_dir(&segments_dir)
        .map(|dir| dir.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "json"));
    files.sort();

    let mut defs = Vec::new();
    let mut out = String::from(
        "/// Segment files bundled at build time: (name, JSON text).\n\
         pub const SEGMENTS: &[(&str, &str)] = &[\n",
    );
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("segment file names are utf-8");
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("segments/{name}.json is not valid JSON: {e}"));
        defs.push((name.to_owned(), doc));
        let abs = fs::canonicalize(path).expect("a listed file has a canonical path");
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            abs.display().to_string()
        )
        .expect("writing to a String cannot fail");
    }
    out.push_str("];\n");
    if let Err(e) = weft_core::segment::Segments::compile(&defs) {
        panic!("segments/: {e}");
    }

    let dest = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("segments.rs");
    fs::write(dest, out).expect("OUT_DIR is writable");
}
