"use strict";
(function () {
  // Sortable tables: a header click sorts by each cell's data-value (numbers) or its text.
  function key(cell, numeric) {
    if (!cell) return numeric ? -Infinity : "";
    var v = cell.getAttribute("data-value");
    if (numeric) {
      if (v === null || v === "null") return -Infinity;
      var x = JSON.parse(v);
      return typeof x === "number" ? x : (x === true ? 1 : (x === false ? 0 : -Infinity));
    }
    return (v !== null ? v : cell.textContent).toLowerCase();
  }
  function sortBy(th) {
    var table = th.closest("table"), body = table.tBodies[0];
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute("data-sort") === "num";
    var descending = th.getAttribute("aria-sort") !== "descending";
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.children[index], numeric), y = key(b.children[index], numeric);
      var c = x < y ? -1 : (x > y ? 1 : 0);
      return descending ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable thead th").forEach(function (th) {
    th.addEventListener("click", function () { sortBy(th); });
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(th); } });
  });

  // Hover: each chart element's <title> shown at once next to the pointer.
  var tip = document.getElementById("tooltip");
  document.querySelectorAll("svg.chart .tip").forEach(function (g) {
    var title = g.querySelector(":scope > title");
    if (!title) return;
    g.setAttribute("data-tip", title.textContent);
    g.setAttribute("aria-label", title.textContent);
    title.remove();
  });
  function show(e) {
    var g = e.target.closest && e.target.closest("[data-tip]");
    if (!g) { tip.style.display = "none"; return; }
    tip.textContent = g.getAttribute("data-tip");
    tip.style.display = "block";
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var x = e.clientX + 14, y = e.clientY + 14;
    if (x + w > window.innerWidth - 4) x = Math.max(4, e.clientX - w - 14);
    if (y + h > window.innerHeight - 4) y = Math.max(4, e.clientY - h - 14);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    svg.addEventListener("mousemove", show);
    svg.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  });
  document.documentElement.setAttribute("data-ready", "1");
  if (window.performance && performance.mark) performance.mark("lossacc-ready");
})();
