// Runs the SDK's wasm-bindgen-test tests (crates/sdk/tests/web.rs) in headless Chromium,
// so `make test` (whose e2e step runs every tests/*.test.mjs) includes them: the id and
// storage logic against the real document.cookie and localStorage.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

import { ROOT } from "./sdk_support.mjs";

test("wasm-bindgen-test: the SDK's id and storage logic in Chromium", () => {
  const run = spawnSync(
    "cargo",
    ["test", "-p", "weft-sdk", "--target", "wasm32-unknown-unknown", "--test", "web"],
    { cwd: ROOT, encoding: "utf8", timeout: 540_000 },
  );
  const out = `${run.stdout}\n${run.stderr}`;
  assert.equal(run.status, 0, out.slice(-4000));
  assert.match(out, /test result: ok\. [1-9]\d* passed; 0 failed/);
});
