// weft's snippet: paste it into every page's <head>, before any call to `weft`.
//
// It defines the global `weft` as a queue of calls, so pages can call weft.page(),
// weft.track(...), weft.identify(...) at once; it loads the SDK asynchronously, which
// replays the queued calls in order once it runs. `weft.load(writeKey, options)` starts
// the load. Options: `host` (the collector's origin, default this page's), `src` (the
// SDK's URL, default `<host>/sdk/pkg/weft.js`), `consent` ("granted", "pending",
// "denied"), `gpc` (false to ignore Global Privacy Control), `flushAt`, `flushInterval`,
// `maxEvents`, `maxBytes`, `cookieDomain`, `debug`.
//
// The minified copy to paste is www/snippet.min.js (written by scripts/build-sdk.sh).
(function (w, d) {
  var weft = (w.weft = w.weft || []);
  if (weft.load) return;
  "page track identify group alias reset setAnonymousId ready debug consent"
    .split(" ")
    .forEach(function (m) {
      weft[m] = function () {
        weft.push([m].concat([].slice.call(arguments)));
        return weft;
      };
    });
  weft.load = function (writeKey, o) {
    o = o || {};
    o.writeKey = writeKey;
    weft._cfg = o;
    var s = d.createElement("script");
    s.async = true;
    s.src = o.src || (o.host || "") + "/sdk/pkg/weft.js";
    d.head.appendChild(s);
  };
})(window, document);
