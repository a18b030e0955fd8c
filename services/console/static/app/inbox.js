// The inbox: typing in the canned-reply search narrows the list (Enter takes the first one),
// and a chosen canned reply lands in the reply box with the focus there.
(function () {
  "use strict";

  function narrow(search) {
    const select = document.getElementById(search.dataset.filters || "");
    if (!(select instanceof HTMLSelectElement)) return null;
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    let first = null;
    for (const option of select.options) {
      const text = option.textContent.toLowerCase();
      const shown = words.every((word) => text.includes(word));
      option.hidden = !shown;
      if (shown && first === null) first = option;
    }
    return { select, first };
  }

  document.addEventListener("input", (event) => {
    const target = event.target;
    if (target instanceof HTMLInputElement && target.dataset.filters) narrow(target);
  });

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (!(target instanceof HTMLInputElement) || !target.dataset.filters) return;
    if (event.key === "Escape") { target.value = ""; narrow(target); return; }
    if (event.key !== "Enter") return;
    event.preventDefault();  // Enter picks a canned reply, it does not decide
    const found = narrow(target);
    if (found && found.first) {
      found.select.value = found.first.value;
      found.select.dispatchEvent(new Event("change", { bubbles: true }));
    }
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    if (target instanceof HTMLElement && target.id === "reply-box") {
      document.getElementById("reply-text")?.focus();
    }
  });
})();
