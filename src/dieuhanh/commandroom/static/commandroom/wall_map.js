// THE WALL'S MAP HOOK (issue 17). The wall draws its map through `window.DieuhanhWallMap.draw(element,
// {unit, figure, mapUrl})` → Promise of the map's data. Until the room's map with real province
// boundaries is a reusable module (point 3, `window.DieuhanhMap`), this hook draws what the room draws
// today: the unit's children as circles at their coordinates from `room/map.json`, coloured by the
// figure over the last 7 days, on a dark ground. When `window.DieuhanhMap.draw` exists, it is used
// instead, and this file's own drawing is left unused.
(function () {
  "use strict";
  const COLOURS = ["#fdd0a2", "#fdae6b", "#fd8d3c", "#e6550d", "#a63603"]; // less → more
  const NONE = "#3a4452";
  const numbers = new Intl.NumberFormat(document.documentElement.lang === "en" ? "en" : "vi-VN");
  const maps = new WeakMap();

  function colour(value, max) {
    if (!value || !max) return NONE;
    return COLOURS[Math.min(COLOURS.length - 1, Math.floor((value / max) * COLOURS.length))];
  }

  function circles(element, found) {
    let state = maps.get(element);
    if (!state) {
      const map = L.map(element, { zoomSnap: 0.25, attributionControl: false, zoomControl: false });
      state = { map, layer: L.featureGroup().addTo(map) };
      maps.set(element, state);
    }
    const placed = found.items.filter((item) => item.lat !== null && item.lon !== null);
    const max = Math.max(0, ...placed.map((item) => item.value));
    const radius = Math.max(8, Math.round(element.clientHeight / 70));
    if (placed.length) {
      state.map.fitBounds(L.latLngBounds(placed.map((i) => [i.lat, i.lon])), { padding: [radius * 2, radius * 2], maxZoom: 12 });
    } else {
      state.map.setView([found.unit.lat ?? 16, found.unit.lon ?? 106], found.unit.lat === null ? 5 : 12);
    }
    state.layer.clearLayers();
    placed.forEach((item) => {
      const marker = L.circleMarker([item.lat, item.lon], {
        radius,
        weight: 1,
        color: "#0b0f14",
        fillColor: colour(item.value, max),
        fillOpacity: 0.95,
        className: "unit-marker",
      });
      marker.bindTooltip(`${item.name}: ${numbers.format(item.value)}`);
      marker.addTo(state.layer);
      marker.getElement().setAttribute("data-ref", item.ref);
    });
    return { max, colours: COLOURS, none: NONE };
  }

  const controllers = new WeakMap();

  async function drawShapes(element, options) {
    // The room's own map, one per unit shown: the wall's next view draws it afresh.
    const previous = controllers.get(element);
    if (previous && previous.unit === options.unit) {
      await previous.controller.reload();
      element.dataset.drawn = String(Number(element.dataset.shapes || 0) + Number(element.dataset.points || 0));
      return { controller: previous.controller };
    }
    if (previous && previous.controller.map) previous.controller.map.remove();
    const edition = options.unit.split(":")[0];
    const controller = await window.DieuhanhMap.draw(element, { ...options, shapesUrl: `${options.shapesBase}${edition}.json` });
    controllers.set(element, { unit: options.unit, controller });
    element.dataset.drawn = String(Number(element.dataset.shapes || 0) + Number(element.dataset.points || 0));
    return { controller };
  }

  async function draw(element, options) {
    if (window.DieuhanhMap && typeof window.DieuhanhMap.draw === "function") {
      return drawShapes(element, options);
    }
    const params = new URLSearchParams({ unit: options.unit, figure: options.figure });
    const response = await fetch(`${options.mapUrl}?${params}`, { headers: { Accept: "application/json" } });
    if (!response.ok) return null;
    const found = await response.json();
    const scale = window.L ? circles(element, found) : null;
    element.dataset.drawn = String(found.items.length);
    return { data: found, scale };
  }

  window.DieuhanhWallMap = { draw };
})();
