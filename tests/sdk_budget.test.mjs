// The SDK's size budget: what a page downloads (snippet + loader and glue + wasm, gzip -9)
// against the peers' browser bundles installed by npm, measured in the same run. (Time on
// the main thread is a speed figure: `make bench` measures it, beside analytics-next.)
//
// The peers are the ones `make bench` measures (bench/sizes.mjs, `PEERS`), measured the
// same way: each bundle as shipped and after `esbuild --minify` (some packages ship
// unminified code), keeping the smaller, so the comparison is with each peer at its best.
// The SDK must be smaller than every one of them; the aim, 15 KB, is printed.
//
// Needs the built SDK (scripts/build-sdk.sh; `make test` builds it first).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, test } from "node:test";

import { ROOT, sdkBuilt } from "./sdk_support.mjs";

const gzip = (bytes) => gzipSync(bytes, { level: 9 }).length;
const gz = (path) => gzip(readFileSync(join(ROOT, path)));
const ESBUILD = join(ROOT, "node_modules/@esbuild/linux-x64/bin/esbuild");

// As bench/sizes.mjs names them (importing it would run the bench).
const PEERS = [
  "node_modules/@segment/analytics-next/dist/umd/standalone.js",
  "node_modules/@rudderstack/analytics-js/dist/npm/modern/umd/index.js",
  "node_modules/@snowplow/browser-tracker/dist/index.umd.min.js",
  "node_modules/posthog-js/dist/array.js",
];

// A peer bundle's gzipped size as shipped or minified, whichever is smaller.
function peerSize(path) {
  const minified = execFileSync(ESBUILD, [join(ROOT, path), "--minify", "--log-level=error"], {
    maxBuffer: 64 << 20,
  });
  return Math.min(gz(path), gzip(minified));
}

describe("sdk budgets", { skip: !sdkBuilt() && "SDK not built: run scripts/build-sdk.sh" }, () => {
  test("the SDK is smaller than every peer bundle measured", () => {
    const parts = {
      snippet: gz("www/snippet.min.js"),
      "loader+glue": gz("www/sdk/pkg/weft.js"),
      wasm: gz("www/sdk/pkg/weft_sdk_bg.wasm"),
    };
    const ours = Object.values(parts).reduce((a, b) => a + b, 0);
    const missing = PEERS.filter((p) => !existsSync(join(ROOT, p)));
    assert.deepEqual(missing, [], "peer bundles missing (npm ci? a new version moved them?)");
    const peers = PEERS.map((p) => [p, peerSize(p)]);
    console.log(`weft sdk ${ours} B gzipped (${JSON.stringify(parts)}); aim 15000 B`);
    for (const [p, size] of peers) console.log(`peer ${p} ${size} B gzipped`);
    assert.ok(parts.snippet < 1024, `snippet ${parts.snippet} B, budget 1 KB`);
    for (const [p, size] of peers) assert.ok(ours < size, `${ours} B is not smaller than ${p}`);
  });
});
