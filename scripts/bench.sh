#!/usr/bin/env bash
# `make bench`: measures weft beside its peers in one run and writes the table to
# BENCHMARKS.md (bench/table.mjs), with the date and the machine.
#
# Steps: build the SDK and the worker, then the parts under bench/, one at a time (two
# cores do not carry two at once), each bounded by a timeout:
#   sizes         weft's SDK, gzipped, beside the peers' browser bundles from node_modules
#   native        criterion benches of weft-core: identity and segments
#   load          SDK load in headless Chromium, weft beside @segment/analytics-next
#   edge          decide vs a bare KV route, 100-event batches, CPU, freshness (wrangler dev)
#   segment-edge  Segment's Edge SDK personalising from KV vs a bare KV route, same runtime
# Each part writes .weft/bench/results/<part>.json, or <part>.failed with its reason, and
# its log to .weft/bench/logs/<part>.log. A part that cannot measure (a peer missing, a
# build failing, a peer reaching for the internet) fails loudly: the run then prints the
# reasons, leaves BENCHMARKS.md untouched, and exits 1.
#
# Everything listens on and talks to 127.0.0.1 only. Workers run in their own process
# groups and are stopped by the parts (tests/lib/worker.mjs), also when a part is
# interrupted or times out; their storage lives on /dev/shm when it exists.
#
# Usage: scripts/bench.sh            (make bench)
# Environment: WEFT_BENCH_PARTS="edge load" runs only those parts (the table then fails
# for the others); WEFT_BENCH_SKIP_BUILD=1 measures what is already built.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
eval "$("$ROOT/scripts/setup.sh" --print-env)"
cd "$ROOT"

export WEFT_BENCH_STARTED="$(date +%s)"
export WEFT_BENCH_LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
export WEFT_BENCH_RESULTS="$ROOT/.weft/bench/results"
LOGS="$ROOT/.weft/bench/logs"
rm -rf "$WEFT_BENCH_RESULTS" "$LOGS"
mkdir -p "$WEFT_BENCH_RESULTS" "$LOGS"
if [[ -d /dev/shm && -w /dev/shm ]]; then
  export TMPDIR=/dev/shm
fi

PARTS=(sizes native load edge segment-edge)
declare -A LIMIT=([sizes]=120 [native]=420 [load]=240 [edge]=600 [segment-edge]=240)
declare -A NEEDS=([sizes]=sdk [load]=sdk [edge]=worker)
declare -A BROKEN=()
selected=" ${WEFT_BENCH_PARTS:-${PARTS[*]}} "

say() { printf '\n== bench: %s\n' "$*"; }

failed() { # part reason
  printf '%s\n' "$2" >"$WEFT_BENCH_RESULTS/$1.failed"
  printf 'bench: %s FAILED: %s\n' "$1" "$2" >&2
}

say "load average at the start: $WEFT_BENCH_LOAD_BEFORE ($(nproc) cores)"
for tool in wrk gzip cargo /usr/bin/chromium; do
  if ! command -v "$tool" >/dev/null; then
    echo "bench: $tool missing; run scripts/setup.sh" >&2
    exit 1
  fi
done

# Builds. A failed build must not leave an older build to be measured as this one.
if [[ "${WEFT_BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  say "build-sdk"
  if [[ ! -f scripts/build-sdk.sh ]]; then
    BROKEN[sdk]="scripts/build-sdk.sh missing: weft's SDK cannot be built"
  elif ! make --no-print-directory build-sdk 2>&1 | tee "$LOGS/build-sdk.log"; then
    BROKEN[sdk]="make build-sdk failed (see .weft/bench/logs/build-sdk.log)"
  fi
fi

# The SDK's files as just built, copied, so a rebuild by someone else in this checkout
# cannot change them between the size and the load measurements.
export WEFT_BENCH_WWW="$ROOT/.weft/bench/www"
rm -rf "$WEFT_BENCH_WWW"
mkdir -p "$WEFT_BENCH_WWW/sdk"
if [[ -z "${BROKEN[sdk]:-}" ]]; then
  if ! cp www/snippet.min.js "$WEFT_BENCH_WWW/" || ! cp -r www/sdk/pkg "$WEFT_BENCH_WWW/sdk/"; then
    BROKEN[sdk]="www/snippet.min.js or www/sdk/pkg/ missing: run make build-sdk"
  fi
fi

if [[ "${WEFT_BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  say "build-worker"
  if ! make --no-print-directory build-worker 2>&1 | tee "$LOGS/build-worker.log"; then
    BROKEN[worker]="make build-worker failed (see .weft/bench/logs/build-worker.log)"
  fi
fi

for part in "${PARTS[@]}"; do
  [[ "$selected" == *" $part "* ]] || continue
  need="${NEEDS[$part]:-}"
  if [[ -n "$need" && -n "${BROKEN[$need]:-}" ]]; then
    failed "$part" "${BROKEN[$need]}"
    continue
  fi
  say "$part (at most ${LIMIT[$part]} s)"
  begun=$SECONDS
  status=0
  timeout --signal=TERM --kill-after=30 "${LIMIT[$part]}" node "bench/$part.mjs" 2>&1 \
    | tee "$LOGS/$part.log" || status=$?
  if ((status != 0)); then
    reason="$(grep -h 'FAILED:' "$LOGS/$part.log" | tail -n1 | sed 's/^bench: [a-z-]* FAILED: //' \
      || true)"
    if ((status == 124)); then reason="timed out after ${LIMIT[$part]} s"; fi
    failed "$part" "${reason:-exited with status $status (see .weft/bench/logs/$part.log)}"
  fi
  echo "bench: $part took $((SECONDS - begun)) s"
done

say "table"
printf '{"started":%s,"finished":%s,"loadBefore":"%s","loadAfter":"%s"}\n' \
  "$WEFT_BENCH_STARTED" "$(date +%s)" "$WEFT_BENCH_LOAD_BEFORE" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" >"$WEFT_BENCH_RESULTS/run.json"
node bench/table.mjs
