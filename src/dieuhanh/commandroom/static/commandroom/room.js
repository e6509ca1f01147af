// The command room: the map of the unit's children (Leaflet, circles at their coordinates, no tile
// layer unless one is configured) and the live updates (server-sent events → reload map and panels).
(function () {
  "use strict";
  const root = document.getElementById("room");
  if (!root) return;
  const data = root.dataset;
  const unit = data.unit;
  const figureSelect = document.getElementById("room-figure");
  const live = document.getElementById("room-live");
  const COLOURS = ["#fcbba1", "#fc9272", "#fb6a4a", "#de2d26", "#a50f15"]; // light → dark: less → more
  const NONE = "#c8ced6";
  const numberFormat = new Intl.NumberFormat(document.documentElement.lang === "en" ? "en" : "vi-VN", {
    maximumFractionDigits: 2,
  });

  const map = window.L ? L.map("room-map", { zoomSnap: 0.25, attributionControl: Boolean(data.tileUrl) }) : null;
  if (map && data.tileUrl) L.tileLayer(data.tileUrl, { maxZoom: 18 }).addTo(map);
  const layer = map ? L.featureGroup().addTo(map) : null;
  let fitted = false;

  function colour(value, max) {
    if (!value || !max) return NONE;
    return COLOURS[Math.min(COLOURS.length - 1, Math.floor((value / max) * COLOURS.length))];
  }

  function go(url) {
    window.location.assign(url);
  }

  function drawMarker(item, max) {
    const marker = L.circleMarker([item.lat, item.lon], {
      radius: 9,
      weight: 1,
      color: "#1b1f24",
      fillColor: colour(item.value, max),
      fillOpacity: 0.9,
      className: "unit-marker",
    });
    const label = `${item.name}: ${numberFormat.format(item.value)}`;
    marker.bindTooltip(label);
    marker.on("click", () => go(item.url));
    marker.addTo(layer);
    // Keyboard and screen readers reach each circle as a link to the unit.
    const el = marker.getElement();
    el.setAttribute("data-ref", item.ref);
    el.setAttribute("role", "link");
    el.setAttribute("tabindex", "0");
    el.setAttribute("aria-label", label);
    el.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        go(item.url);
      }
    });
  }

  function fillList(items, label) {
    document.getElementById("map-list-figure").textContent = label;
    const body = document.getElementById("map-list");
    body.replaceChildren(
      ...items.map((item) => {
        const row = document.createElement("tr");
        const name = document.createElement("td");
        const link = document.createElement("a");
        link.href = item.url;
        link.textContent = item.name;
        name.append(link);
        const value = document.createElement("td");
        value.className = "num";
        value.textContent = numberFormat.format(item.value);
        row.append(name, value);
        return row;
      })
    );
  }

  function summarise(items, placed) {
    const top = items.reduce((best, item) => (!best || item.value > best.value ? item : best), null);
    let text = `${placed} ${data.textUnits}`;
    if (placed < items.length) text += ` (${items.length - placed} ${data.textNoCoordinates})`;
    if (top && top.value) text += ` · ${data.textHighest}: ${top.name} (${numberFormat.format(top.value)})`;
    document.getElementById("map-summary").textContent = text;
  }

  async function loadMap() {
    const params = new URLSearchParams({ unit, figure: figureSelect.value });
    const response = await fetch(`${data.mapUrl}?${params}`, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const found = await response.json();
    const items = found.items;
    const placed = items.filter((item) => item.lat !== null && item.lon !== null);
    const max = Math.max(0, ...items.map((item) => item.value));
    if (layer) {
      // The view first: Leaflet draws a circle only on a map that has one.
      if (!fitted && placed.length) {
        map.fitBounds(L.latLngBounds(placed.map((item) => [item.lat, item.lon])), { padding: [20, 20], maxZoom: 12 });
      } else if (!fitted) {
        map.setView([found.unit.lat ?? 16, found.unit.lon ?? 106], found.unit.lat === null ? 5 : 12);
      }
      fitted = true;
      layer.clearLayers();
      placed.forEach((item) => drawMarker(item, max));
    }
    fillList(items, found.figure.label);
    summarise(items, placed.length);
    root.dataset.mapLoaded = String(items.length);
  }

  async function loadParts(names) {
    const response = await fetch(`${data.partsUrl}?${new URLSearchParams({ unit, parts: names.join(",") })}`);
    if (!response.ok) return;
    const parts = await response.json();
    for (const [name, html] of Object.entries(parts)) {
      const target = document.getElementById(`room-${name}`);
      if (target) target.innerHTML = html;
    }
  }

  // An event says what changed: new figures redraw the map and the figures' parts, a directive's
  // change only the directives' part. The server already sends a burst as one message per kind every
  // few seconds; a screen still reloads at most once per that window, whatever arrives meanwhile.
  const WHAT_CHANGES = { figures: ["tiles", "alerts", "map"], directive: ["directives", "alerts"] };
  const windowMs = Number(data.coalesceMs || 2000);
  const wanted = new Set();
  let pending = null;
  let lastRun = 0;
  function refresh(event) {
    (WHAT_CHANGES[event.type] || []).forEach((part) => wanted.add(part));
    if (pending) return;
    const wait = Math.max(0, lastRun + windowMs - Date.now());
    pending = setTimeout(async () => {
      pending = null;
      lastRun = Date.now();
      const names = [...wanted];
      wanted.clear();
      const parts = names.filter((name) => name !== "map");
      await Promise.all([parts.length ? loadParts(parts) : null, names.includes("map") ? loadMap() : null]);
      live.textContent = `${data.textLive} · ${data.textUpdated} ${new Date().toLocaleTimeString(document.documentElement.lang || "vi")}`;
      document.dispatchEvent(new CustomEvent("room:refreshed", { detail: { parts: names } })); // charts.js
    }, wait);
  }

  figureSelect.addEventListener("change", () => {
    const url = new URL(window.location.href);
    url.searchParams.set("figure", figureSelect.value);
    window.history.replaceState(null, "", url);
    loadMap();
  });

  const stream = new EventSource(`${data.streamUrl}?${new URLSearchParams({ unit })}`);
  stream.addEventListener("open", () => {
    live.textContent = data.textLive;
    root.dataset.live = "open";
  });
  stream.addEventListener("error", () => {
    live.textContent = data.textOffline;
  });
  stream.addEventListener("figures", refresh);
  stream.addEventListener("directive", refresh);

  loadMap();
})();
