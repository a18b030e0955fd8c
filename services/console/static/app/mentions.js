// The mentions stream: announce "n new" politely when the count changes, and after the new
// mentions are put on top, focus the first of them (never on page load, never by itself).
(function () {
  "use strict";

  let announced = "";

  document.addEventListener("htmx:beforeSwap", (event) => {
    const target = event.detail.target;
    if (!(target instanceof HTMLElement) || target.id !== "mention-rows") return;
    target.querySelectorAll("[data-focus-after-swap]").forEach((row) => {
      row.removeAttribute("data-focus-after-swap");
    });
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    if (!(target instanceof HTMLElement)) return;
    if (target.id === "mention-rows") {
      document.querySelectorAll("p.empty").forEach((note) => note.remove());
      announced = "";
      return;
    }
    if (target.id !== "mention-news") return;
    const bar = target.querySelector(".new-bar");
    const count = bar instanceof HTMLElement ? bar.dataset.count || "" : "";
    if (bar instanceof HTMLElement && count !== announced && window.smmAnnounce) {
      window.smmAnnounce(bar.textContent.trim());
    }
    announced = count;
  });
})();
