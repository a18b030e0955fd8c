// The console's own script: CSRF header on every htmx request, auto-submitting selects, the
// live state, polling when the stream is down, and single-key shortcuts. No inline script
// anywhere (the Content-Security-Policy forbids it), so pages configure this with data-*.
(function () {
  "use strict";

  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const i18n = () => document.getElementById("i18n")?.dataset || {};
  const POLL_MS = 20000;
  let live = false;
  let pollTimer = null;

  document.addEventListener("htmx:configRequest", (event) => {
    event.detail.headers["X-CSRF-Token"] = csrf();
  });

  // Errors of a fragment request: say so in the region, keep the rest of the page working.
  // htmx 2 decides whether to swap in htmx:beforeSwap (responseError comes after the swap).
  document.addEventListener("htmx:beforeSwap", (event) => {
    const xhr = event.detail.xhr;
    if (xhr.status === 422 || xhr.status === 409 || xhr.status === 403 || xhr.status === 404) {
      event.detail.shouldSwap = true;  // the server sent the form or the reason in HTML
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:responseError", () => announce(i18n().error || "Error"));
  document.addEventListener("htmx:sendError", () => announce(i18n().error || "Error"));

  function announce(text) {
    const region = document.getElementById("announcer");
    if (region) { region.textContent = ""; setTimeout(() => { region.textContent = text; }, 50); }
  }
  window.smmAnnounce = announce;

  function setLiveState(state) {
    const badge = document.getElementById("live-state");
    if (!badge) return;
    badge.dataset.liveState = state;
    badge.textContent = i18n()[state] || state;
  }

  function poll() {
    if (document.visibilityState !== "visible") return;
    document.querySelectorAll("[data-poll]").forEach((el) => htmx.trigger(el, "smm:poll"));
  }

  function startPolling() {
    if (pollTimer === null) pollTimer = setInterval(poll, POLL_MS);
  }
  function stopPolling() {
    if (pollTimer !== null) { clearInterval(pollTimer); pollTimer = null; }
  }

  document.addEventListener("htmx:sseOpen", () => { live = true; setLiveState("live"); stopPolling(); });
  document.addEventListener("htmx:sseError", () => { live = false; setLiveState("reconnecting"); startPolling(); });
  document.addEventListener("htmx:sseClose", () => { live = false; setLiveState("reconnecting"); startPolling(); });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") setLiveState("paused");
    else setLiveState(live ? "live" : "reconnecting");
  });
  document.body.addEventListener("sse:signed-out", () => { window.location.href = "/login"; });
  document.body.addEventListener("sse:refresh", poll);

  document.addEventListener("change", (event) => {
    const target = event.target;
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit")) {
      target.form?.requestSubmit();
    }
  });

  // Single-key shortcuts outside text fields; pages bind keys with data-key="x" on a button.
  const OFF_KEY = "smm-shortcuts-off";
  const typing = (el) => el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement ||
    el instanceof HTMLSelectElement || (el instanceof HTMLElement && el.isContentEditable);

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) {
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && typing(event.target)) {
        const form = event.target.form;
        if (form) { event.preventDefault(); form.requestSubmit(); }
      }
      return;
    }
    if (typing(event.target) || localStorage.getItem(OFF_KEY) === "1") return;
    if (event.key === "?") {
      event.preventDefault();
      document.getElementById("shortcut-help")?.showModal();
      return;
    }
    const button = document.querySelector(`[data-key="${CSS.escape(event.key)}"]:not([disabled])`);
    if (button instanceof HTMLElement) {
      event.preventDefault();
      if (button instanceof HTMLInputElement || button instanceof HTMLTextAreaElement) button.focus();
      else button.click();
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    const off = document.getElementById("shortcuts-off");
    if (off instanceof HTMLInputElement) {
      off.checked = localStorage.getItem(OFF_KEY) === "1";
      off.addEventListener("change", () => localStorage.setItem(OFF_KEY, off.checked ? "1" : "0"));
    }
    if (!document.querySelector("[sse-connect]")) startPolling();
  });

  // After a swap, focus the new item if the fragment names one (never on page load).
  document.addEventListener("htmx:afterSettle", (event) => {
    const focus = event.detail.elt.querySelector("[data-focus-after-swap]");
    if (focus instanceof HTMLElement) focus.focus();
  });
})();
