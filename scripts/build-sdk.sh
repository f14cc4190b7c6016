#!/usr/bin/env bash
# Builds the browser SDK into www/sdk/pkg (git-ignored) and prints its gzipped sizes.
#
#   crates/sdk  --cargo +nightly, release, wasm32, build-std-->  weft_sdk.wasm
#               --wasm-bindgen --target web-->  glue (ES module) + weft_sdk_bg.wasm
#               --wasm-opt -Oz (npm binaryen)-->  weft_sdk_bg.wasm, optimised for size
#   www/sdk/loader.js + glue  --esbuild, two passes, iife, minified-->  www/sdk/pkg/weft.js
#   www/snippet.js  --esbuild, minified-->  www/snippet.min.js (committed: the docs show it)
#
# What a page downloads: the snippet (inline), weft.js and weft_sdk_bg.wasm. The total of
# their gzip -9 sizes is printed, then the peers' bundles found in node_modules measured the
# same way; `WEFT_SDK_TWIGGY=1` also prints where the wasm's bytes go (`cargo install
# twiggy`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT=www/sdk/pkg
BIN="$ROOT/node_modules/.bin"
WASM_OPT="$ROOT/node_modules/binaryen/bin/wasm-opt"
for tool in "$BIN/esbuild" "$WASM_OPT"; do
  [[ -x "$tool" ]] || { echo "build-sdk: $tool missing: run scripts/setup.sh" >&2; exit 1; }
done
command -v wasm-bindgen >/dev/null || { echo "build-sdk: wasm-bindgen missing: run scripts/setup.sh" >&2; exit 1; }

# The release wasm is built with nightly Rust, `core` and `alloc` rebuilt for size
# (`-Z build-std` with `optimize_for_size`) and `panic=immediate-abort`: a panic becomes a
# trap, so no panic or formatting machinery is linked, and without the crate's `std`
# feature nothing of std is either. This needs nightly's rust-src component
# (scripts/setup.sh adds it); without it the build falls back to stable Rust and std,
# which works the same but makes the wasm about 7 KB gzipped larger, so the SDK is then
# larger than the smallest peer.
# Its own target folder keeps these flags from invalidating the workspace's other builds.
# opt-level "z" (size) for this crate only; the worker keeps "s".
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z
SDK_TARGET="$ROOT/target/sdk-size"
nightly_src="$(rustc +nightly --print sysroot 2>/dev/null || true)/lib/rustlib/src/rust/library"
if [[ -d "$nightly_src/core" ]]; then
  CARGO_TARGET_DIR="$SDK_TARGET" RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort" \
    cargo +nightly build --release --target wasm32-unknown-unknown -p weft-sdk \
    --no-default-features -Zbuild-std=core,alloc -Zbuild-std-features=optimize_for_size
else
  echo "build-sdk: nightly Rust with rust-src not found (rustup component add rust-src" \
    "--toolchain nightly, or scripts/setup.sh): building with stable Rust and std instead;" \
    "the wasm will be about 7 KB gzipped larger" >&2
  CARGO_TARGET_DIR="$SDK_TARGET" cargo build --release --target wasm32-unknown-unknown -p weft-sdk
fi
WASM="$SDK_TARGET/wasm32-unknown-unknown/release/weft_sdk.wasm"
rm -rf "$OUT"
mkdir -p "$OUT"
# `--encode-into always`: every browser that runs this wasm has TextEncoder.encodeInto.
wasm-bindgen --target web --no-typescript --encode-into always --out-dir "$OUT" "$WASM"
"$WASM_OPT" -Oz --converge --strip-debug --strip-producers --strip-target-features \
  --enable-bulk-memory \
  --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
  --enable-reference-types --enable-multivalue \
  "$OUT/weft_sdk_bg.wasm" -o "$OUT/weft_sdk_bg.wasm"
# The glue's async loader (default wasm URL from import.meta, which an iife lacks) is left
# out by esbuild's tree shaking: the loader fetches the wasm and calls initSync. esbuild
# warns before it shakes, so that warning is silenced.
# Two passes: esbuild inlines constants (the loader's operation codes) only in a file
# without imports, so the loader's import line is set aside for a first pass, then the
# result is bundled with the glue. `--pure:console.warn` drops the glue's warnings about
# deprecated ways of calling it, which the loader does not use (the loader itself
# reports with console.error and console.log).
(grep '^import ' www/sdk/loader.js
  grep -v '^import ' www/sdk/loader.js \
    | "$BIN/esbuild" --minify-syntax --minify-whitespace --format=esm --log-level=warning) \
  > "$SDK_TARGET/loader.js"
(cd www/sdk && "$BIN/esbuild" --bundle --minify --format=iife --target=es2020 --pure:console.warn \
  --log-override:empty-import-meta=silent --log-level=warning) \
  < "$SDK_TARGET/loader.js" > "$OUT/weft.js"
# The glue's module and its snippets are bundled into weft.js; nothing loads them.
rm -rf "$OUT/weft_sdk.js" "$OUT/snippets"
"$BIN/esbuild" www/snippet.js --minify --target=es5 --log-level=warning \
  | tr -d '\n' > www/snippet.min.js
echo >> www/snippet.min.js
cp www/sdk/weft.d.ts "$OUT/weft.d.ts"

# gzip -9 from stdin (no file name in the header), as bench/sizes.mjs measures.
gz() { gzip -9c < "$1" | wc -c; }
snippet=$(gz www/snippet.min.js)
glue=$(gz "$OUT/weft.js")
wasm=$(gz "$OUT/weft_sdk_bg.wasm")
total=$((snippet + glue + wasm))
printf 'sdk size (gzip -9): snippet %d B, loader+glue %d B, wasm %d B (raw %d B), total %d B\n' \
  "$snippet" "$glue" "$wasm" "$(wc -c < "$OUT/weft_sdk_bg.wasm")" "$total"
# The peers' browser bundles that bench/sizes.mjs measures, installed by npm, measured the
# same way in the same run: the smaller of as shipped and after esbuild --minify.
for peer in node_modules/@segment/analytics-next/dist/umd/standalone.js \
  node_modules/@rudderstack/analytics-js/dist/npm/modern/umd/index.js \
  node_modules/@snowplow/browser-tracker/dist/index.umd.min.js \
  node_modules/posthog-js/dist/array.js; do
  [[ -f "$peer" ]] || continue
  shipped=$(gz "$peer")
  minified=$("$BIN/esbuild" "$peer" --minify --log-level=error | gzip -9c | wc -c)
  printf 'peer size (gzip -9): %s %d B\n' "$peer" $((shipped < minified ? shipped : minified))
done
if [[ "${WEFT_SDK_TWIGGY:-0}" == 1 ]] && command -v twiggy >/dev/null; then
  named="$ROOT/target/weft-sdk-named"
  rm -rf "$named"
  wasm-bindgen --target web --no-typescript --out-dir "$named" "$WASM"
  "$WASM_OPT" -Oz -g --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$named/weft_sdk_bg.wasm" -o "$named/named.wasm"
  twiggy top -n 25 "$named/named.wasm"
fi
