#!/usr/bin/env bash
# Serves the built worker under the local Workers runtime, in the foreground: Ctrl-C stops it.
#
# KV, the Durable Object and R2 persist under .weft/state (ignored by git), so profiles and
# decisions survive a restart; delete that folder for a clean slate. Secrets come from
# .dev.vars, which set-up writes. `make dev` runs set-up and the build first; this script
# does not build.
#
# Usage: scripts/dev.sh [extra wrangler dev arguments]   (WEFT_PORT overrides 8787)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
eval "$("$ROOT/scripts/setup.sh" --print-env)"
cd "$ROOT"

if [[ ! -f crates/edge/build/index.js ]]; then
  echo "dev: crates/edge/build/index.js missing; run make build (or make dev)" >&2
  exit 1
fi

mkdir -p .weft/state
exec wrangler dev --ip 127.0.0.1 --port "${WEFT_PORT:-8787}" --persist-to .weft/state "$@"
