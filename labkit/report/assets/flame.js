/* labkit's flamegraph viewer: no dependencies, no network. Each .lk-flame element holds its
   tree as JSON ({n: name, f: "file:line", v: value, u: 1 for the user's code, c: [...]}).
   Click a frame to zoom into it; "Reset" zooms out; the search box marks matching frames
   and says what share of the total they hold. Frames under 1% of the view's width are left
   out until zoomed into: the graph is as tall as its deepest visible stack. */
(function () {
  "use strict";
  if (window.labkitFlame) { window.labkitFlame(); return; }
  var ROW = 18;
  var MIN_W = 0.01;  // frames under 1% of the view are not drawn (zoom in to see them), so
                     // the height fits the deepest stack that shows, not a 1-pixel tail
  function human(v, unit) {
    if (unit !== "bytes") return Math.round(v).toLocaleString() + " " + unit;
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i += 1; }
    return (i ? v.toFixed(1) : Math.round(v)) + " " + u[i];
  }
  function setup(root) {
    if (root.getAttribute("data-ready")) return;
    root.setAttribute("data-ready", "1");
    var data = JSON.parse(root.querySelector("script.lk-flame-data").textContent);
    var unit = root.getAttribute("data-unit") || "samples";
    var body = root.querySelector(".lk-flame-body");
    var info = root.querySelector(".lk-flame-info");
    var input = root.querySelector("input");
    var match = root.querySelector(".lk-flame-match");
    var focus = data;
    (function link(n, p) { n.p = p; (n.c || []).forEach(function (c) { link(c, n); }); })(data, null);
    function share(v) { return (100 * v / Math.max(data.v, 1)).toFixed(1) + "%"; }
    function label(n) { return n.n + (n.f ? " (" + n.f + ")" : ""); }
    function hits(term) {
      var sum = 0;
      (function walk(n) {
        if (term && (n.n + " " + n.f).toLowerCase().indexOf(term) >= 0) { sum += n.v; return; }
        (n.c || []).forEach(walk);
      })(data);
      return sum;
    }
    function draw() {
      var term = input.value.trim().toLowerCase();
      var frag = document.createDocumentFragment(), depth = 0, chain = [];
      for (var a = focus; a; a = a.p) chain.unshift(a);
      function box(n, x, w, d, ancestor) {
        var el = document.createElement("div");
        var hit = term && (n.n + " " + n.f).toLowerCase().indexOf(term) >= 0;
        el.className = "lk-fn " + (hit ? "lk-hit" : n.u ? "lk-user" : "lk-lib") +
          (ancestor ? " lk-anc" : "");
        el.style.left = (100 * x) + "%";
        el.style.width = (100 * w) + "%";
        el.style.top = (d * ROW) + "px";
        el.textContent = label(n);
        el.onmouseenter = function () {
          info.textContent = label(n) + ": " + human(n.v, unit) + ", " + share(n.v) + " of all";
        };
        el.onclick = function () { focus = n; draw(); };
        frag.appendChild(el);
        depth = Math.max(depth, d);
      }
      chain.slice(0, -1).forEach(function (n, i) { box(n, 0, 1, i, true); });
      (function walk(n, x, w, d) {
        if (w < MIN_W) return;
        box(n, x, w, d, false);
        var cx = x;
        (n.c || []).forEach(function (c) { var cw = w * c.v / n.v; walk(c, cx, cw, d + 1); cx += cw; });
      })(focus, 0, 1, chain.length - 1);
      body.textContent = "";
      body.appendChild(frag);
      body.style.height = ((depth + 1) * ROW + 2) + "px";
      var s = hits(term);
      match.textContent = term ? "matches: " + human(s, unit) + " (" + share(s) + ")" : "";
    }
    input.oninput = draw;
    root.querySelector("button").onclick = function () { focus = data; input.value = ""; draw(); };
    draw();
  }
  window.labkitFlame = function () {
    Array.prototype.forEach.call(document.querySelectorAll(".lk-flame"), setup);
  };
  window.labkitFlame();
})();
