//! SDK size: what weft's browser SDK costs a visitor beside the browser bundles of its
//! peers, every file gzipped with `gzip -9` in the same run.
//!
//! weft: what a page downloads, as `make build-sdk` writes it: the minified snippet
//! (`www/snippet.min.js`, inline in the page), the loader and glue (`www/sdk/pkg/weft.js`)
//! and the wasm (`www/sdk/pkg/weft_sdk_bg.wasm`).
//! Peers: the standalone browser bundle of each npm package, the file a site serves or its
//! CDN copy is built from (`PEERS` names them). Each file is measured as shipped and, since
//! some packages ship unminified bundles, also after `esbuild --minify`, the form a site
//! would serve; the comparison uses each side's smaller figure. Peers' snippets are not
//! counted (weft's is), and chunks a peer loads later on demand are not either.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

import { BenchError, ROOT, round, runPart, saveResult, WWW } from "./lib.mjs";

/** The peers' browser bundles, as found in their npm packages. */
export const PEERS = [
  {
    name: "@segment/analytics-next",
    file: "dist/umd/standalone.js",
    note: "standalone bundle (the CDN's analytics.min.js); loads further chunks on demand",
  },
  {
    name: "@rudderstack/analytics-js",
    file: "dist/npm/modern/umd/index.js",
    note: "v3 modern UMD core (plugins load on demand); shipped unminified",
  },
  {
    name: "@snowplow/browser-tracker",
    file: "dist/index.umd.min.js",
    note: "minified UMD browser tracker",
  },
  {
    name: "posthog-js",
    file: "dist/array.js",
    note: "array.js, the bundle its snippet loads",
  },
];

const ESBUILD = join(ROOT, "node_modules/@esbuild/linux-x64/bin/esbuild");

runPart("sizes", async () => {
  const weftFiles = weftSdkFiles();
  const weft = weftFiles.map((path) => measure(path));
  const total = {
    raw: sum(weft, "raw"),
    gzip: sum(weft, "gzip"),
    gzipMinified: sum(weft, "gzipMinified"),
  };

  const peers = PEERS.map((peer) => {
    const dir = join(ROOT, "node_modules", peer.name);
    const path = join(dir, peer.file);
    if (!existsSync(path)) {
      throw new BenchError(
        `${peer.name}: ${peer.file} not in node_modules (npm ci? a new version moved it?)`,
      );
    }
    const version = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).version;
    return { name: peer.name, version, note: peer.note, ...measure(path) };
  });

  const best = (x) => Math.min(x.gzip, x.gzipMinified);
  const smallestPeer = peers.reduce((a, b) => (best(a) <= best(b) ? a : b));
  saveResult("sizes", {
    weft: { files: weft, total },
    peers,
    smallestPeer: smallestPeer.name,
    ratioWeftOverSmallestPeer: round(Math.min(total.gzip, total.gzipMinified) / best(smallestPeer)),
  });
});

/**
 * What a page downloads for weft's SDK, as scripts/build-sdk.sh writes it: the minified
 * snippet (inline in the page), the loader bundled with wasm-bindgen's glue, and the wasm.
 * Fails when the SDK has not been built.
 */
function weftSdkFiles() {
  const files = ["snippet.min.js", "sdk/pkg/weft.js", "sdk/pkg/weft_sdk_bg.wasm"];
  for (const file of files) {
    const path = join(WWW, file);
    if (!existsSync(path)) {
      throw new BenchError(`${file} missing: weft's SDK is not built (make build-sdk)`);
    }
    // Two builds at once in one checkout can leave a file empty or half written.
    const head = readFileSync(path).subarray(0, 4);
    if (head.length === 0 || (file.endsWith(".wasm") && head.toString("latin1") !== "\0asm")) {
      throw new BenchError(`${file} is empty or not WebAssembly: rebuild with make build-sdk`);
    }
  }
  return files.map((file) => join(WWW, file));
}

/** Raw size, gzip -9 as shipped, and gzip -9 after esbuild --minify (JS only). */
function measure(path) {
  const raw = statSync(path).size;
  const gzip = gzipSize(readFileSync(path));
  let gzipMinified = gzip;
  if (!path.endsWith(".wasm")) {
    const minified = execFileSync(ESBUILD, [path, "--minify", "--log-level=error"], {
      maxBuffer: 64 << 20,
    });
    // Minifying can only be asked to help: keep the shipped size when it does not.
    gzipMinified = Math.min(gzip, gzipSize(minified));
  }
  const file = path.startsWith(WWW) ? join("www", relative(WWW, path)) : relative(ROOT, path);
  return { file, raw, gzip, gzipMinified };
}

function gzipSize(bytes) {
  return execFileSync("gzip", ["-9c"], { input: bytes, maxBuffer: 64 << 20 }).length;
}

function sum(rows, key) {
  return rows.reduce((total, row) => total + row[key], 0);
}
