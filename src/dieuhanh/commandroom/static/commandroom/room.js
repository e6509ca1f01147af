// The command room: the map of the unit's children (DieuhanhMap in vnmap.js: province polygons, points
// below them, a legend; no tile layer unless one is configured) and the live updates (server-sent
// events → reload map and panels).
(function () {
  "use strict";
  const root = document.getElementById("room");
  if (!root) return;
  const data = root.dataset;
  const unit = data.unit;
  const figureSelect = document.getElementById("room-figure");
  const live = document.getElementById("room-live");
  const measureSelect = document.getElementById("room-measure");
  const numberFormat = new Intl.NumberFormat(document.documentElement.lang === "en" ? "en" : "vi-VN", {
    maximumFractionDigits: 2,
  });
  // The place looked at, kept by the map's 2021/2025 toggle: ?view=lat,lon,zoom (from the other map).
  const viewParam = new URLSearchParams(window.location.search).get("view");
  const viewParts = viewParam ? viewParam.split(",").map(Number) : [];
  const view = viewParts.length === 3 && viewParts.every(Number.isFinite)
    ? { lat: viewParts[0], lon: viewParts[1], zoom: viewParts[2] }
    : null;
  let roomMap = null;

  function fillList(found, how) {
    document.getElementById("map-list-figure").textContent = found.figure.label;
    const body = document.getElementById("map-list");
    body.replaceChildren(
      ...found.items.map((item) => {
        const row = document.createElement("tr");
        const name = document.createElement("td");
        const link = document.createElement("a");
        link.href = item.url;
        link.textContent = item.name;
        name.append(link);
        const value = document.createElement("td");
        value.className = "num";
        value.textContent = numberFormat.format(item.value);
        const change = document.createElement("td");
        change.className = "num";
        change.textContent =
          item.change_pct === null || item.change_pct === undefined
            ? "—"
            : `${item.change_pct > 0 ? "+" : ""}${numberFormat.format(item.change_pct)}%`;
        row.append(name, value, change);
        return row;
      })
    );
    const items = found.items;
    const placed = how.polygons ? items.length : items.filter((i) => i.lat !== null && i.lon !== null).length;
    const top = items.reduce((best, item) => (!best || item.value > best.value ? item : best), null);
    let text = `${placed} ${data.textUnits}`;
    if (placed < items.length) text += ` (${items.length - placed} ${data.textNoCoordinates})`;
    if (top && top.value) text += ` · ${data.textHighest}: ${top.name} (${numberFormat.format(top.value)})`;
    document.getElementById("map-summary").textContent = text;
    root.dataset.mapLoaded = String(items.length);
  }

  // The editions' links carry the place looked at, so that the other map opens on it.
  function keepPlace() {
    if (!roomMap) return;
    const v = roomMap.view();
    root.dataset.view = `${v.lat.toFixed(4)},${v.lon.toFixed(4)},${v.zoom}`;
    document.querySelectorAll("nav.editions a[data-edition]").forEach((link) => {
      const params = new URLSearchParams({
        edition: link.dataset.edition,
        from: unit,
        view: `${v.lat.toFixed(4)},${v.lon.toFixed(4)},${v.zoom}`,
      });
      if (figureSelect.value) params.set("figure", figureSelect.value);
      if (measureSelect && measureSelect.value !== "count") params.set("measure", measureSelect.value);
      link.href = `${data.roomUrl}?${params}`;
    });
  }

  async function loadMap() {
    if (roomMap) return roomMap.reload();
    if (!window.DieuhanhMap) return null;
    const chosen = measureSelect ? measureSelect.value : "count";
    roomMap = await window.DieuhanhMap.draw(document.getElementById("room-map"), {
      unit,
      figure: figureSelect.value,
      measure: chosen.startsWith("layer:") ? "count" : chosen,
      layer: chosen.startsWith("layer:") ? chosen.slice("layer:".length) : null,
      onDrill: drill,
      mapUrl: data.mapUrl,
      shapesUrl: data.shapesUrl,
      tileUrl: data.tileUrl,
      view,
      onData: fillList,
    });
    roomMap.map.on("moveend", keepPlace);
    keepPlace();
    // A layer registered while the map drew (a later script) and asked for in the address.
    if (measureSelect && measureSelect.value !== chosen) measureSelect.dispatchEvent(new Event("change"));
    return roomMap;
  }

  // Going down keeps the figure and the measure (a commune's page is only a page).
  function drill(item) {
    const extra = new URLSearchParams();
    if (item.url.startsWith(`${data.roomUrl}?`)) {
      if (figureSelect.selectedIndex > 0) extra.set("figure", figureSelect.value); // the first is the default
      if (measureSelect && measureSelect.value !== "count") extra.set("measure", measureSelect.value);
    }
    window.location.assign(extra.size ? `${item.url}&${extra}` : item.url);
  }

  // Layers of categories registered by other modules (e.g. approval state) join the measures.
  function offerLayer(layer) {
    if (!measureSelect || measureSelect.querySelector(`option[value="layer:${layer.code}"]`)) return;
    const option = document.createElement("option");
    option.value = `layer:${layer.code}`;
    option.textContent = layer.label;
    measureSelect.append(option);
    if (option.value === askedMeasure) {
      measureSelect.value = option.value;
      if (roomMap) roomMap.setLayer(layer.code);
    }
  }
  // The measure asked for in the address (kept from the room above, or from the other map).
  const askedMeasure = new URLSearchParams(window.location.search).get("measure");
  if (measureSelect && askedMeasure && measureSelect.querySelector(`option[value="${CSS.escape(askedMeasure)}"]:not([disabled])`)) {
    measureSelect.value = askedMeasure;
  }
  if (window.DieuhanhMap) window.DieuhanhMap.layers.forEach(offerLayer);
  document.addEventListener("dieuhanh:map-layer", (event) => offerLayer(event.detail));

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
  const WHAT_CHANGES = {
    figures: ["tiles", "alerts", "map"],
    directive: ["directives", "alerts"],
    approval: ["tiles", "map"], // issue 19: a unit below approved, accepted or unapproved
  };
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
    if (roomMap) roomMap.setFigure(figureSelect.value).then(keepPlace);
  });
  if (measureSelect) {
    measureSelect.addEventListener("change", () => {
      const url = new URL(window.location.href);
      if (measureSelect.value === "count") url.searchParams.delete("measure");
      else url.searchParams.set("measure", measureSelect.value);
      window.history.replaceState(null, "", url);
      keepPlace();
      if (!roomMap) return;
      const value = measureSelect.value;
      if (value.startsWith("layer:")) roomMap.setLayer(value.slice("layer:".length));
      else roomMap.setMeasure(value);
    });
  }

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
  stream.addEventListener("approval", refresh);

  loadMap();
})();
