//! No input yields a 500: a table of hostile bodies posted to the collector of the built
//! worker under `wrangler dev`. Malformed JSON, wrong types, invalid text encodings, huge
//! numbers, duplicate keys, deep nesting, 10k-element arrays, oversized ids, broken gzip:
//! each is answered 4xx with a JSON error naming the fault, or 200 with the bad events in
//! `rejected`, never 5xx, and the worker keeps serving afterwards without a panic in its
//! log.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";

import { startWorker } from "./lib/worker.mjs";
import { basic, metrics, pageEvent, post, profile, uid } from "./collector_common.mjs";

const KEY = `"writeKey":"demo-write-key"`;
const PAGE = `"type":"page","anonymousId":"hostile"`;

/** `[name, body (text or bytes), options]`; every one is sent to /v1/batch unless `path`. */
const CASES = [
  // Malformed JSON.
  ["unclosed object", "{"],
  ["unclosed batch", `{${KEY},"batch":[`],
  ["broken event", `{${KEY},"batch":[{]}`],
  ["trailing comma", `{${KEY},"batch":[{${PAGE},"messageId":"tc"},]}`],
  ["trailing garbage", `{${KEY},"batch":[]}}`],
  ["single quotes", `{'writeKey':'demo-write-key','batch':[]}`],
  ["NaN and Infinity", `{${KEY},"batch":[{${PAGE},"messageId":"n","properties":{"v":NaN}}]}`],
  ["comments", `{${KEY} /* hi */,"batch":[]}`],
  ["only whitespace", "   \n\t  "],
  ["only a bom", Buffer.from([0xef, 0xbb, 0xbf])],
  ["no body at all", null],
  // Wrong types.
  ["batch is a string", `{${KEY},"batch":"events"}`],
  ["batch is null", `{${KEY},"batch":null}`],
  ["batch of scalars", `{${KEY},"batch":[null,1,"s",[],true,{}]}`],
  ["writeKey is a number", `{"writeKey":5,"batch":[{${PAGE},"messageId":"wk"}]}`],
  ["type is a number", `{${KEY},"batch":[{"type":5,"anonymousId":"a","messageId":"t"}]}`],
  ["anonymousId is an object",
    `{${KEY},"batch":[{"type":"page","anonymousId":{},"messageId":"o"}]}`],
  ["messageId is an object", `{${KEY},"batch":[{${PAGE},"messageId":{"id":1}}]}`],
  ["properties is an array", `{${KEY},"batch":[{${PAGE},"messageId":"p","properties":[1]}]}`],
  ["context is a string", `{${KEY},"batch":[{${PAGE},"messageId":"c","context":"ctx"}]}`],
  ["integrations is a string", `{${KEY},"batch":[{${PAGE},"messageId":"i","integrations":"x"}]}`],
  ["timestamps of every type", `{${KEY},"sentAt":{},"batch":[{${PAGE},"messageId":"ts",` +
    `"timestamp":5,"sentAt":[],"originalTimestamp":true}]}`],
  ["dates that do not exist", `{${KEY},"sentAt":"2024-13-45T99:99:99Z","batch":[{${PAGE},` +
    `"messageId":"dates","timestamp":"2023-02-29T00:00:00Z"}]}`],
  ["event on a route of another type", `{${KEY},${PAGE},"messageId":"rt"}`, { path: "/v1/t" }],
  ["a batch body on an event route", `{${KEY},"batch":[{${PAGE},"messageId":"b"}]}`,
    { path: "/v1/i" }],
  // Invalid text encodings.
  ["invalid utf-8", Buffer.concat([Buffer.from(`{${KEY},"batch":[{${PAGE},"messageId":"`),
    Buffer.from([0xff, 0xfe, 0xc0, 0xaf]), Buffer.from(`"}]}`)])],
  ["utf-16 with a bom", Buffer.concat([Buffer.from([0xff, 0xfe]),
    Buffer.from(`{${KEY},"batch":[]}`, "utf16le")])],
  ["latin-1 text", Buffer.from(`{${KEY},"batch":[{${PAGE},"messageId":"café"}]}`, "latin1")],
  ["lone surrogate escapes", `{${KEY},"batch":[{"type":"page","anonymousId":"\\ud800",` +
    `"messageId":"s1"},{${PAGE},"messageId":"\\udfff\\ud800"}]}`],
  ["nul characters", `{${KEY},"batch":[{"type":"page","anonymousId":"nul\\u0000id",` +
    `"messageId":"\\u0000"}]}`],
  // Huge numbers.
  ["numbers past f64", `{${KEY},"batch":[{${PAGE},"messageId":"big",` +
    `"properties":{"a":1e999,"b":-1e999}}]}`],
  ["ids past u64", `{${KEY},"batch":[{"type":"page","anonymousId":18446744073709551616,` +
    `"userId":123456789012345678901234567890,"messageId":1e400}]}`],
  ["a number of 100k digits", `{${KEY},"batch":[{${PAGE},"messageId":"digits",` +
    `"properties":{"n":${"9".repeat(100_000)}}}]}`],
  ["tiny and negative zero", `{${KEY},"batch":[{${PAGE},"messageId":"tiny",` +
    `"properties":{"a":4.9e-325,"b":-0.0,"c":-0}}]}`],
  // Duplicate keys.
  ["duplicate batch keys", `{${KEY},"batch":[{${PAGE},"messageId":"d1"}],"batch":"x"}`],
  ["duplicate event keys", `{${KEY},"batch":[{"type":"page","type":"track","anonymousId":"a",` +
    `"anonymousId":{"x":1},"messageId":"d2","messageId":"d3"}]}`],
  ["duplicate write keys", `{"writeKey":"nope",${KEY},"batch":[{${PAGE},"messageId":"d4"}]}`],
  // Deep nesting.
  ["40 levels inside an event", `{${KEY},"batch":[{${PAGE},"messageId":"deep",` +
    `"properties":{"x":${"[".repeat(40)}1${"]".repeat(40)}}}]}`],
  ["200 levels in the batch", `{${KEY},"batch":[${"[".repeat(200)}${"]".repeat(200)}]}`],
  ["100k open brackets", `{${KEY},"batch":${"[".repeat(100_000)}`],
  ["deep objects", `{${KEY},"batch":[{${PAGE},"messageId":"deepo","context":` +
    `${'{"a":'.repeat(5_000)}1${"}".repeat(5_000)}}]}`],
  // Big arrays.
  ["10k events", `{${KEY},"batch":[${Array(10_000).fill(`{${PAGE}}`).join(",")}]}`],
  ["10k nulls", `{${KEY},"batch":[${Array(10_000).fill("null").join(",")}]}`],
  ["10k-element property", `{${KEY},"batch":[{${PAGE},"messageId":"arr",` +
    `"properties":{"a":[${Array(10_000).fill("1").join(",")}]}}]}`],
  ["2000 empty events", `{${KEY},"batch":[${Array(2_000).fill("{}").join(",")}]}`],
  // Long strings and ids.
  ["a 20 KiB anonymous id",
    `{${KEY},"batch":[{"type":"page","anonymousId":"${"a".repeat(20_000)}",` +
    `"messageId":"long-anon"}]}`],
  ["a 512-byte anonymous id",
    `{${KEY},"batch":[{"type":"page","anonymousId":"${"k".repeat(512)}",` +
    `"messageId":"kv-key"}]}`],
  ["a 1 KiB user id", `{${KEY},"batch":[{"type":"identify","userId":"${"u".repeat(1_024)}",` +
    `"messageId":"long-user"}]}`],
  ["a 30 KiB messageId", `{${KEY},"batch":[{${PAGE},"messageId":"${"m".repeat(30_000)}"}]}`],
  ["a 20 KiB property string", `{${KEY},"batch":[{${PAGE},"messageId":"long-prop",` +
    `"properties":{"s":"${"s".repeat(20_000)}"}}]}`],
  // Broken compression.
  ["gzip header, garbage after", Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]),
    { gzip: "declared" }],
  ["truncated gzip", gzipSync(`{${KEY},"batch":[{${PAGE},"messageId":"gz"}]}`).subarray(0, 20),
    { gzip: "declared" }],
  ["gzip of invalid utf-8", gzipSync(Buffer.from([0x7b, 0xff, 0x7d])), { gzip: "declared" }],
  ["gzip twice", gzipSync(gzipSync(`{${KEY},"batch":[]}`)), { gzip: "declared" }],
  ["content-encoding br", `{${KEY},"batch":[{${PAGE},"messageId":"br"}]}`,
    { headers: { "content-encoding": "br" } }],
  // Headers.
  ["broken basic auth", `{"batch":[{${PAGE},"messageId":"auth"}]}`,
    { headers: { authorization: "Basic %%%not-base64" } }],
  ["basic auth of invalid utf-8", `{"batch":[{${PAGE},"messageId":"auth8"}]}`,
    { headers: { authorization: `Basic ${Buffer.from([0xff, 0x3a]).toString("base64")}` } }],
];

describe("no input yields a 500", () => {
  let worker;
  before(async () => {
    worker = await startWorker();
  });
  after(() => worker?.stop());

  test("every hostile body is answered 4xx or 200 with rejections, as json", async () => {
    const failures = [];
    for (const [name, body, options = {}] of CASES) {
      const headers = { "content-type": "text/plain", ...options.headers };
      if (options.gzip === "declared") headers["content-encoding"] = "gzip";
      let status;
      let text;
      try {
        const res = await fetch(`${worker.url}${options.path ?? "/v1/batch"}`, {
          method: "POST",
          headers,
          body,
        });
        status = res.status;
        text = await res.text();
      } catch (error) {
        failures.push(`${name}: request failed: ${error.message}`);
        continue;
      }
      let json;
      try {
        json = JSON.parse(text);
      } catch {
        failures.push(`${name}: ${status} answer is not json: ${text.slice(0, 200)}`);
        continue;
      }
      if (status >= 500) {
        failures.push(`${name}: ${status} ${text.slice(0, 300)}`);
      } else if (status === 200) {
        if (json.ok !== true || !Array.isArray(json.rejected) || !Array.isArray(json.warnings)) {
          failures.push(`${name}: 200 without the answer's shape: ${text.slice(0, 200)}`);
        }
      } else if (typeof json.error !== "string" || json.error.length === 0) {
        failures.push(`${name}: ${status} without an error message: ${text.slice(0, 200)}`);
      } else if (/^[A-Z]/.test(json.error)) {
        failures.push(`${name}: error is not lowercase: ${json.error}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  test("the answers name the fault", async () => {
    const named = [
      ["100k open brackets", 400, /not valid json/],
      ["10k events", 400, /batch holds 10000 events; the limit is 2000/],
      ["invalid utf-8", 400, /not valid utf-8/],
      ["40 levels inside an event", 400, /deeper than 32 levels/],
      ["a 30 KiB messageId", 400, /messageId exceeds 16384 bytes/],
      ["a 20 KiB property string", 400, /string at properties.s exceeds 16384 bytes/],
      ["gzip header, garbage after", 400, /not valid gzip/],
      ["broken basic auth", 401, /missing write key/],
      ["type is a number", 400, /type must be a string \(got a number\)/],
    ];
    for (const [name, status, error] of named) {
      const [, body, options = {}] = CASES.find(([n]) => n === name);
      // A key the body cannot give (it is unreadable) comes as the Basic user name.
      const headers = { authorization: basic("demo-write-key"), ...options.headers };
      if (options.gzip === "declared") headers["content-encoding"] = "gzip";
      const res = await fetch(`${worker.url}/v1/batch`, { method: "POST", headers, body });
      const json = await res.json();
      assert.equal(res.status, status, `${name}: ${JSON.stringify(json).slice(0, 300)}`);
      assert.match(json.error, error, name);
    }
  });

  test("after the hostile table the worker still stores events, and never panicked", async () => {
    const anon = uid("after-hostile");
    const res = await post(worker.url, "/v1/batch", { batch: [pageEvent(anon)] }, {
      writeKey: null,
      headers: { authorization: basic("demo-write-key") },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal((await profile(worker.url, `anonymous_id:${anon}`)).events, 1);
    const counts = await metrics(worker.url);
    assert.ok(counts.rejectedTotal > 0, "the hostile bodies were counted");
    assert.doesNotMatch(worker.logs(), /panicked|RuntimeError|unreachable/);
    // An id too long for a KV key must not leave a doc that fails on every alarm.
    assert.doesNotMatch(worker.logs(), /kv write failed/);
  });
});
