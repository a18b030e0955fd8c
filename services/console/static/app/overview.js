// The overview's charts (Chart.js, configured from the JSON block the figures fragment
// carries), the "updated n min ago" text, and refreshing the figures on new mentions at most
// every 30 s. No inline script: the page only holds data. The canvases carry no id: htmx
// settles attributes of elements whose id survives a swap by writing their old `style`
// attribute, which the Content-Security-Policy refuses (Chart.js styles its canvases).
(function () {
  "use strict";

  const REFRESH_MS = 30000;
  const charts = [];
  let lastRefresh = Date.now();
  let pending = null;

  const css = (name, fallback) =>
    getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  const quiet = () => window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  function draw() {
    while (charts.length) charts.pop().destroy();
    const block = document.getElementById("overview-data");
    if (!block || typeof window.Chart === "undefined") return;
    const data = JSON.parse(block.textContent || "{}");
    const text = data.text || {};
    const animation = quiet() ? false : undefined;
    const sentimentCanvas = document.querySelector('canvas[data-chart="sentiment"]');
    if (sentimentCanvas) {
      const colours = {
        positive: css("--positive", "#1a7f37"),
        neutral: css("--neutral", "#59636e"),
        negative: css("--negative", "#b42318"),
      };
      charts.push(new window.Chart(sentimentCanvas, {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: ["positive", "neutral", "negative"].map((name) => ({
            label: text[name] || name,
            data: data.sentiment[name],
            backgroundColor: colours[name],
            stack: "mentions",
          })),
        },
        options: {
          animation, maintainAspectRatio: false,
          scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: text.mentions } } },
        },
      }));
    }
    const shareCanvas = document.querySelector('canvas[data-chart="share"]');
    if (shareCanvas) {
      const palette = [css("--accent", "#0b5cad"), "#8a5a00", "#6f42c1", "#0f766e", "#9a3412", "#334155"];
      charts.push(new window.Chart(shareCanvas, {
        type: "line",
        data: {
          labels: data.labels,
          datasets: (data.share || []).map((series, i) => ({
            label: series.name,
            data: series.values,
            borderColor: palette[i % palette.length],
            backgroundColor: palette[i % palette.length],
            pointStyle: ["circle", "rect", "triangle", "rectRot", "star", "cross"][i % 6],
            spanGaps: true,
          })),
        },
        options: {
          animation, maintainAspectRatio: false,
          scales: { y: { min: 0, max: 100, title: { display: true, text: text.share } } },
        },
      }));
    }
    const platformCanvas = document.querySelector('canvas[data-chart="platforms"]');
    if (platformCanvas && (data.platforms || []).length) {
      charts.push(new window.Chart(platformCanvas, {
        type: "bar",
        data: {
          labels: data.platforms.map((row) => row.platform),
          datasets: [{
            label: text.mentions,
            data: data.platforms.map((row) => row.mentions),
            backgroundColor: css("--accent", "#0b5cad"),
          }],
        },
        options: {
          animation, maintainAspectRatio: false, indexAxis: "y",
          plugins: { legend: { display: false } },
          scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
        },
      }));
    }
  }

  function tickUpdated() {
    document.querySelectorAll("[data-updated-at]").forEach((el) => {
      const at = Date.parse(el.dataset.updatedAt || "");
      if (Number.isNaN(at)) return;
      const minutes = Math.max(0, Math.floor((Date.now() - at) / 60000));
      el.textContent = minutes < 1 ? el.dataset.justNow : (el.dataset.minutes || "").replace("{n}", String(minutes));
    });
  }

  function refresh() {
    pending = null;
    const figures = document.getElementById("figures");
    if (figures && document.visibilityState === "visible") htmx.trigger(figures, "smm:refresh");
  }

  // New mentions: refresh now if the last refresh is 30 s old, else once when it will be.
  document.addEventListener("sse:mention", () => {
    if (pending !== null) return;
    const wait = Math.max(0, lastRefresh + REFRESH_MS - Date.now());
    pending = setTimeout(refresh, wait);
  });

  document.addEventListener("htmx:afterSettle", (event) => {
    if (event.detail.target && event.detail.target.id === "figures") {
      lastRefresh = Date.now();
      draw();
      tickUpdated();
    }
  });
  document.addEventListener("DOMContentLoaded", () => {
    draw();
    setInterval(tickUpdated, 30000);
  });
})();
