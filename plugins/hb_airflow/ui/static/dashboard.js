// Hyperband dashboard: re-render <main> from the server every few seconds while there is something to watch.
// The server sends only the <main> element when asked with the X-Hyperband-Partial header.
(function () {
  "use strict";
  var MAX_FAILURES = 20;
  var failures = 0;

  function schedule() {
    var main = document.getElementById("content");
    var seconds = main ? Number(main.getAttribute("data-refresh")) : 0;
    if (seconds > 0 && failures < MAX_FAILURES) {
      window.setTimeout(refresh, seconds * 1000);
    }
  }

  function refresh() {
    if (document.hidden) { schedule(); return; }
    fetch(window.location.href, { headers: { "X-Hyperband-Partial": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          window.location.reload();  // the full page explains and links to the sign-in page
          throw new Error("signed out");
        }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        failures = 0;
        var current = document.getElementById("content");
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#content");
        if (current && fresh && fresh.innerHTML !== current.innerHTML) {
          current.replaceWith(fresh);
        }
      })
      .catch(function () { failures += 1; })
      .then(schedule);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", schedule);
  } else {
    schedule();
  }
})();
