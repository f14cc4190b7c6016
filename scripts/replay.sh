#!/usr/bin/env bash
# Rebuilds every profile and decision from the R2 archive (plus events not yet archived).
#
# Usage: scripts/replay.sh [worker URL]   (default http://127.0.0.1:8787)
# The admin token comes from WEFT_ADMIN_TOKEN, else .dev.vars. Replay clears the graph's
# profiles, identifiers, merge log and dedupe memory, then ingests the archive in order;
# undo blocks and erasures (tombstones) are honoured.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
url="${1:-http://127.0.0.1:8787}"
token="${WEFT_ADMIN_TOKEN:-}"
if [[ -z "$token" && -f "$ROOT/.dev.vars" ]]; then
  token="$(sed -n 's/^WEFT_ADMIN_TOKEN=//p' "$ROOT/.dev.vars" | head -1)"
fi
if [[ -z "$token" ]]; then
  echo "replay: no admin token (set WEFT_ADMIN_TOKEN)" >&2
  exit 1
fi
curl -sS --fail-with-body -X POST -H "authorization: Bearer $token" "$url/admin/replay"
echo
