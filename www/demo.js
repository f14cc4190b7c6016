// The demo site's live panel: once the SDK runs, shows the visitor's ids and polls
// GET /v1/decide for their segments; the form calls weft.identify().
(function () {
  var $ = function (id) { return document.getElementById(id); };
  function show(list) {
    var box = $("segments");
    box.textContent = "";
    if (!list.length) box.textContent = "none yet";
    list.forEach(function (name) {
      var tag = document.createElement("mark");
      tag.className = "segment";
      tag.textContent = name;
      box.appendChild(tag);
      box.appendChild(document.createTextNode(" "));
    });
  }
  function refresh(w) {
    var u = w.user();
    $("anon").textContent = u.anonymousId;
    $("uid").textContent = u.userId || "none";
    fetch("/v1/decide?anonymousId=" + encodeURIComponent(u.anonymousId))
      .then(function (r) { return r.ok ? r.json() : { segments: [] }; })
      .then(function (d) { show(d.segments || []); })
      .catch(function () { show([]); });
  }
  weft.ready(function (w) {
    refresh(w);
    setInterval(function () { refresh(w); }, 1500);
    $("login").addEventListener("submit", function (e) {
      e.preventDefault();
      w.identify($("user").value);
      w.flush();
    });
  });
})();
