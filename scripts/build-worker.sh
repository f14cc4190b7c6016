#!/usr/bin/env bash
# Builds the edge worker (crates/edge) for the Workers runtime, offline.
#
# worker-build would download wasm-bindgen, wasm-opt and esbuild from GitHub; the
# `<NAME>_BIN` variables point it at the local ones instead: wasm-bindgen from
# `cargo install` (set-up installs the lock file's version), wasm-opt from npm's binaryen
# (Debian's is too old for the worker's wasm) and esbuild from npm.
#
# Output: crates/edge/build/index.js (the JS entry wrangler.toml's `main` names) next to
# crates/edge/build/index_bg.wasm.
#
# Usage: scripts/build-worker.sh [extra worker-build arguments, e.g. --no-opt]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
eval "$("$ROOT/scripts/setup.sh" --print-env)"

lock_version="$("$ROOT/scripts/setup.sh" --wasm-bindgen-version)"
if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $lock_version" ]]; then
  echo "build-worker: wasm-bindgen $lock_version not on PATH; run scripts/setup.sh" >&2
  exit 1
fi

export WASM_BINDGEN_BIN
WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export WASM_OPT_BIN="$ROOT/node_modules/binaryen/bin/wasm-opt"
export ESBUILD_BIN="$ROOT/node_modules/@esbuild/linux-x64/bin/esbuild"
for bin in "$WASM_OPT_BIN" "$ESBUILD_BIN"; do
  if [[ ! -x "$bin" ]]; then
    echo "build-worker: $bin missing; run scripts/setup.sh" >&2
    exit 1
  fi
done

cd "$ROOT/crates/edge"
started=$SECONDS
worker-build --release "$@"
wasm="$ROOT/crates/edge/build/index_bg.wasm"
if [[ -n "${WEFT_KEEP_NAMES:-}" ]]; then
  # For profiling (bench/profile.mjs): function names are kept.
  echo "build-worker: keeping the name section for profiling"
else
  # The name section (function names for stack traces) is a tenth of the module; the
  # runtime does not need it to run or to report errors.
  "$WASM_OPT_BIN" --all-features --strip-debug --strip-producers "$wasm" -o "$wasm.stripped"
  mv "$wasm.stripped" "$wasm"
fi
echo "build-worker: wasm $(gzip -9c "$wasm" | wc -c) bytes gzipped"
echo "build-worker: built crates/edge/build/index.js in $((SECONDS - started)) s"
