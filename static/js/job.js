// A job's page: its log follows the newest line while the status block is polled (htmx swaps it every second),
// unless the reader has scrolled up to read an earlier line.
(function () {
  var reading = null;  // scrollTop the reader left the log at, or null when it was at the newest line
  function log() { return document.querySelector("#job-status pre.log"); }
  function atEnd(el) { return el.scrollTop + el.clientHeight >= el.scrollHeight - 4; }
  function follow() {
    var el = log();
    if (!el) return;
    el.scrollTop = reading === null ? el.scrollHeight : reading;
  }
  document.addEventListener("DOMContentLoaded", follow);
  document.addEventListener("htmx:beforeSwap", function (e) {
    var el = log();
    if (el && e.detail.target && e.detail.target.id === "job-status") reading = atEnd(el) ? null : el.scrollTop;
  });
  document.addEventListener("htmx:afterSwap", follow);
  document.addEventListener("toggle", function (e) { if (e.target.querySelector && e.target.querySelector("pre.log")) follow(); }, true);
})();
