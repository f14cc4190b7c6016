#!/usr/bin/env bash
# Load and fault runs against the built worker, over loopback only (see tests/load/load.mjs).
#
# `make load`: 30 s at saturation on /v1/batch with 100-event batches of unique messageIds,
# then events/s, p50/p99, errors, and acknowledged vs stored (lost must be 0).
# `make fault`: the same with retrying clients, the runtime's process group killed mid-load
# and restarted on the same state; every acknowledged event must still be stored.
#
# The generator is node (tests/load/drive.mjs) rather than wrk: it has to remember which
# events each 200 acknowledged, resend them afterwards, and retry like the SDK does.
#
# Usage: scripts/load.sh [--fault] [--seconds 30] [--connections 8] [--batch 100]
#                        [--keep-rate-limit] [--url http://127.0.0.1:<port>]
# Run `make build-worker` first: the worker is not rebuilt here.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
eval "$("$ROOT/scripts/setup.sh" --print-env)"

if [[ ! -f "$ROOT/crates/edge/build/index.js" ]]; then
  echo "load: crates/edge/build/index.js missing; run make build-worker first" >&2
  exit 1
fi
cd "$ROOT"
exec node tests/load/load.mjs "$@"
