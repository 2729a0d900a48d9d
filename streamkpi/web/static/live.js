// streamkpi live page: progressive enhancement only. Without JavaScript the page works
// (a <noscript> refresh, a Show button); with it, the live part is re-fetched in place
// and a filter change applies at once. No external request, no eval, no inline code.
"use strict";
(function () {
  const live = document.getElementById("live");
  const form = document.getElementById("filters");
  if (!live || !form) return;
  const every = 1000 * (parseFloat(document.body.dataset.refreshS) || 5);
  document.getElementById("show").hidden = true;
  for (const select of form.querySelectorAll("select")) {
    select.addEventListener("change", () => form.requestSubmit());
  }
  async function refresh() {
    try {
      const response = await fetch(window.location.href, {
        headers: { "X-Streamkpi-Fragment": "1" },
        cache: "no-store",
      });
      if (response.ok) {
        live.innerHTML = await response.text();
        document.body.dataset.refreshed = String(Date.now());
      }
    } catch (error) {
      // The worker restarts or the network blips: keep the last values, try again.
    }
    window.setTimeout(refresh, every);
  }
  window.setTimeout(refresh, every);
})();
