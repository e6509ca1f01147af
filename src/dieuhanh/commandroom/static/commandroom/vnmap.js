// The map of Vietnam's units (issue 17, point 3), shared by the room and the wall: province polygons
// (built from a registry package by `make assets`, served at /room/shapes/EDITION.json) coloured by a
// figure of /room/map.json, a legend with classes, drill-down by click or Enter, and points for the
// units that have no shape in any registry package (districts, communes).
//
//   const map = await DieuhanhMap.draw(element, {unit, figure, measure, mapUrl, shapesUrl, view, tileUrl,
//                                              dark, onDrill, onData, texts});
//   map.reload(); map.setFigure("test"); map.setMeasure("change"); map.setLayer("approval"); map.view();
//
// A layer of categories (e.g. approval state) is registered with DieuhanhMap.addLayer({code, label,
// load: async (unitRef) => ({childRef: {value, text}}), legend: [{value, colour, label}]}).
(function () {
  "use strict";
  if (!window.L) return;
  const lang = document.documentElement.lang === "en" ? "en" : "vi";
  const numbers = new Intl.NumberFormat(lang === "en" ? "en" : "vi-VN", { maximumFractionDigits: 1 });
  const SEQUENTIAL = ["#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15"]; // less → more
  const DIVERGING = [
    // change on cùng kỳ, in per cent: falls in blue, rises in red
    { upTo: -50, colour: "#2166ac" },
    { upTo: -10, colour: "#92c5de" },
    { upTo: 10, colour: "#f7f7f7" },
    { upTo: 50, colour: "#f4a582" },
    { upTo: Infinity, colour: "#b2182b" },
  ];
  const TEXTS = {
    vi: {
      none: "Không có số liệu",
      noPrevious: "Chưa có số liệu cùng kỳ",
      previousNone: "cùng kỳ: 0",
      change: "So với cùng kỳ năm trước",
      count: "Số đếm",
      provinces: "Tỉnh, thành phố: ranh giới",
      points: "Đơn vị cấp dưới: điểm tại toạ độ trụ sở (chưa có gói dữ liệu ranh giới cấp xã, huyện)",
      to: "–",
      missingShapes: "Thiếu ranh giới của",
      over: "trên",
      days: "từ",
    },
    en: {
      none: "No data",
      noPrevious: "No data for the same period last year",
      previousNone: "same period last year: 0",
      change: "Change on the same period last year",
      count: "Count",
      provinces: "Provinces: boundaries",
      points: "Units below: points at their seat (no package ships commune or district boundaries)",
      to: "–",
      missingShapes: "No boundary for",
      over: "over",
      days: "from",
    },
  }[lang];
  const layers = new Map(); // registered categorical layers, by code
  const shapeFiles = new Map(); // shapes URL → Promise of the GeoJSON (one download per page)

  function addLayer(layer) {
    layers.set(layer.code, layer);
    document.dispatchEvent(new CustomEvent("dieuhanh:map-layer", { detail: layer }));
  }

  function shapes(url) {
    if (!url) return Promise.resolve(null);
    if (!shapeFiles.has(url)) {
      shapeFiles.set(
        url,
        fetch(url, { headers: { Accept: "application/geo+json, application/json" } }).then((r) =>
          r.ok ? r.json() : Promise.reject(new Error(`${url}: ${r.status}`))
        )
      );
    }
    return shapeFiles.get(url);
  }

  // Classes of a count: up to five, from the quantiles of the non-zero values, rounded.
  function countClasses(values) {
    const positive = values.filter((v) => v > 0).sort((a, b) => a - b);
    if (!positive.length) return [];
    const breaks = [];
    const n = Math.min(SEQUENTIAL.length, positive.length);
    for (let k = 1; k <= n; k++) {
      const upTo = positive[Math.min(positive.length - 1, Math.ceil((k * positive.length) / n) - 1)];
      if (!breaks.length || upTo > breaks[breaks.length - 1]) breaks.push(upTo);
    }
    // Few classes take colours spread over the palette, so that each is told from the others.
    const last = SEQUENTIAL.length - 1;
    const palette = breaks.map((_, i) =>
      SEQUENTIAL[breaks.length === 1 ? last - 1 : Math.round((i * last) / (breaks.length - 1))]
    );
    const integers = positive.every(Number.isInteger);
    return breaks.map((upTo, i) => ({
      // Counts are whole: a class starts one past the last; other values start just past it ("> a").
      from: i === 0 ? positive[0] : integers ? breaks[i - 1] + 1 : breaks[i - 1],
      above: i > 0 && !integers,
      upTo,
      colour: palette[i],
    }));
  }

  function colourOf(scale, item) {
    if (scale.kind === "layer") {
      const found = scale.values[item.ref];
      const entry = found && scale.layer.legend.find((e) => e.value === found.value);
      return entry ? entry.colour : scale.none;
    }
    if (scale.kind === "change") {
      if (item.previous === 0) return DIVERGING[item.value > 0 ? DIVERGING.length - 1 : 2].colour; // none then
      if (item.change_pct === null || item.change_pct === undefined) return scale.none;
      return DIVERGING.find((c) => item.change_pct <= c.upTo).colour;
    }
    if (!item.value) return scale.none;
    const found = scale.classes.find((c) => item.value <= c.upTo);
    return found ? found.colour : scale.classes[scale.classes.length - 1].colour;
  }

  function labelOf(scale, item) {
    if (scale.kind === "layer") {
      const found = scale.values[item.ref];
      return `${item.name}: ${found ? found.text || found.value : TEXTS.none}`;
    }
    if (scale.kind === "change") {
      if (item.previous === 0) return `${item.name}: ${numbers.format(item.value)} (${TEXTS.previousNone})`;
      if (item.change_pct === null || item.change_pct === undefined) {
        return `${item.name}: ${numbers.format(item.value)} (${TEXTS.noPrevious.toLowerCase()})`;
      }
      const sign = item.change_pct > 0 ? "+" : "";
      return `${item.name}: ${numbers.format(item.value)} (${sign}${numbers.format(item.change_pct)}%)`;
    }
    return `${item.name}: ${numbers.format(item.value)}`;
  }

  function legendRows(scale) {
    if (scale.kind === "layer") {
      return [...scale.layer.legend.map((e) => [e.colour, e.label]), [scale.none, TEXTS.none]];
    }
    if (scale.kind === "change") {
      const rows = [];
      let from = null;
      for (const c of DIVERGING) {
        const text =
          from === null ? `≤ ${c.upTo}%` : c.upTo === Infinity ? `> +${from}%` : `${from > 0 ? "+" : ""}${from}% ${TEXTS.to} ${c.upTo > 0 ? "+" : ""}${c.upTo}%`;
        rows.push([c.colour, text]);
        from = c.upTo;
      }
      return [...rows, [scale.none, TEXTS.noPrevious]];
    }
    return [
      ...scale.classes.map((c) => [
        c.colour,
        c.from === c.upTo
          ? numbers.format(c.upTo)
          : `${c.above ? "> " : ""}${numbers.format(c.from)} ${TEXTS.to} ${numbers.format(c.upTo)}`,
      ]),
      [scale.none, TEXTS.none],
    ];
  }

  function drawLegend(container, scale, found, polygons) {
    container.replaceChildren();
    const title = document.createElement("strong");
    title.textContent =
      scale.kind === "layer" ? scale.layer.label : scale.kind === "change" ? `${found.figure.label} · ${TEXTS.change}` : found.figure.label;
    container.append(title);
    if (found.start && scale.kind !== "layer") {
      const when = document.createElement("div");
      const fmt = (iso) => new Date(`${iso}T00:00:00`).toLocaleDateString(lang === "en" ? "en-GB" : "vi-VN");
      when.textContent = `${fmt(found.start)} ${TEXTS.to} ${fmt(found.end)}`;
      container.append(when);
    }
    const list = document.createElement("ul");
    for (const [colour, text] of legendRows(scale)) {
      const row = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colour;
      row.append(swatch, document.createTextNode(text));
      list.append(row);
    }
    container.append(list);
    const kind = document.createElement("div");
    kind.className = "legend-kind";
    kind.textContent = polygons ? TEXTS.provinces : TEXTS.points;
    container.append(kind);
  }

  // Tooltips as text, never HTML: names and layers' texts come from data.
  function tip(text) {
    const span = document.createElement("span");
    span.textContent = text;
    return span;
  }

  // The place most points are: a far island commune (Côn Đảo, Phú Quốc) does not shrink the rest.
  function core(points) {
    const at = (values, q) => values[Math.min(values.length - 1, Math.floor(q * values.length))];
    const lats = points.map((p) => p.lat).sort((a, b) => a - b);
    const lons = points.map((p) => p.lon).sort((a, b) => a - b);
    return L.latLngBounds([at(lats, 0.02), at(lons, 0.02)], [at(lats, 0.98), at(lons, 0.98)]);
  }

  async function draw(element, options) {
    const map = L.map(element, { zoomSnap: 0.25, attributionControl: true, preferCanvas: false });
    map.attributionControl.setPrefix("Leaflet");
    if (options.tileUrl) L.tileLayer(options.tileUrl, { maxZoom: 18 }).addTo(map);
    const none = options.dark ? "#3a4452" : "#c8ced6";
    const outline = options.dark ? "#0b0f14" : "#ffffff";
    const context = L.featureGroup().addTo(map); // the province around the units shown below it
    const units = L.featureGroup().addTo(map);
    const legend = L.control({ position: "bottomright" });
    legend.onAdd = () => {
      const div = L.DomUtil.create("div", "map-legend");
      L.DomEvent.disableClickPropagation(div);
      return div;
    };
    legend.addTo(map);
    const state = {
      unit: options.unit,
      figure: options.figure || "positive",
      measure: options.measure || "count",
      layer: options.layer || null,
      viewed: false,
      attribution: null,
    };
    const drill = options.onDrill || ((item) => window.location.assign(item.url));

    function reach(layer, item, label) {
      const el = layer.getElement ? layer.getElement() : null;
      if (!el) return;
      el.setAttribute("data-ref", item.ref);
      el.setAttribute("role", "link");
      el.setAttribute("tabindex", "0");
      el.setAttribute("aria-label", label);
      el.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          drill(item);
        }
      });
    }

    async function load() {
      const params = new URLSearchParams({ unit: state.unit, figure: state.figure });
      const response = await fetch(`${options.mapUrl}?${params}`, { headers: { Accept: "application/json" } });
      if (!response.ok) return null;
      const found = await response.json();
      const geo = await shapes(options.shapesUrl).catch((error) => {
        console.error("province shapes:", error);
        return null;
      });
      const features = new Map((geo ? geo.features : []).map((f) => [f.properties.ref, f]));
      if (geo && geo.attribution && state.attribution !== geo.attribution) {
        if (state.attribution) map.attributionControl.removeAttribution(state.attribution);
        state.attribution = geo.attribution;
        map.attributionControl.addAttribution(geo.attribution);
      }
      let scale;
      const layer = state.layer && layers.get(state.layer);
      if (layer) {
        scale = { kind: "layer", layer, values: (await layer.load(state.unit)) || {}, none };
      } else if (state.measure === "change") {
        scale = { kind: "change", none };
      } else {
        scale = { kind: "count", classes: countClasses(found.items.map((i) => i.value)), none };
      }
      // Provinces as polygons when every one has a shape; a unit without one is said, never hidden.
      const drawn = found.items.filter((item) => features.has(item.ref));
      const missing = found.items.filter((item) => !features.has(item.ref));
      const polygons = drawn.length > 0;
      if (polygons && missing.length) {
        console.error(`${TEXTS.missingShapes}: ${missing.map((i) => i.ref).join(", ")}`);
        element.dataset.missingShapes = missing.map((i) => i.ref).join(" ");
      }
      context.clearLayers();
      units.clearLayers();
      const around = found.unit.province && features.get(found.unit.province);
      if (!polygons && around) {
        L.geoJSON(around, {
          interactive: false,
          style: { color: options.dark ? "#8aa0b8" : "#5b6470", weight: 2, fill: true, fillColor: options.dark ? "#1a2330" : "#eef1f4", fillOpacity: 0.6 },
        }).addTo(context);
      }
      const reachable = []; // Leaflet makes the elements once the map has a view: reached after it
      if (polygons) {
        for (const item of drawn) {
          const label = labelOf(scale, item);
          const shape = L.geoJSON(features.get(item.ref), {
            style: { color: outline, weight: 0.8, fillColor: colourOf(scale, item), fillOpacity: 0.9, className: "unit-shape" },
          });
          shape.bindTooltip(tip(label), { sticky: true });
          shape.on("click", () => drill(item));
          shape.addTo(units);
          shape.eachLayer((part) => reachable.push([part, item, label]));
        }
      }
      const points = (polygons ? missing : found.items).filter((i) => i.lat !== null && i.lon !== null);
      const radius = Math.max(5, Math.min(9, Math.round(900 / Math.max(points.length, 1))));
      for (const item of points) {
        const label = labelOf(scale, item);
        const marker = L.circleMarker([item.lat, item.lon], {
          radius,
          weight: 1,
          color: options.dark ? "#0b0f14" : "#1b1f24",
          fillColor: colourOf(scale, item),
          fillOpacity: 0.9,
          className: "unit-marker",
        });
        marker.bindTooltip(tip(label));
        marker.on("click", () => drill(item));
        marker.addTo(units);
        reachable.push([marker, item, label]);
      }
      if (!state.viewed) {
        state.viewed = true;
        const bounds = L.latLngBounds([]);
        if (polygons) bounds.extend(units.getBounds());
        else if (points.length >= 20) bounds.extend(core(points));
        else if (points.length) bounds.extend(units.getBounds());
        else if (context.getLayers().length) bounds.extend(context.getBounds());
        if (options.view) {
          map.setView([options.view.lat, options.view.lon], options.view.zoom);
        } else if (bounds.isValid()) {
          map.fitBounds(bounds, { padding: [12, 12], maxZoom: 12 });
        } else {
          map.setView([found.unit.lat ?? 16, found.unit.lon ?? 106], found.unit.lat === null ? 5 : 10);
        }
      }
      reachable.forEach(([layer, item, label]) => reach(layer, item, label));
      drawLegend(legend.getContainer(), scale, found, polygons);
      element.dataset.shapes = String(polygons ? drawn.length : 0);
      element.dataset.points = String(points.length);
      element.dataset.measure = scale.kind;
      if (options.onData) options.onData(found, { scale, polygons, label: (item) => labelOf(scale, item) });
      return found;
    }

    const controller = {
      map,
      reload: load,
      setFigure(code) {
        state.figure = code;
        return load();
      },
      setMeasure(measure) {
        state.measure = measure;
        state.layer = null;
        return load();
      },
      setLayer(code) {
        state.layer = code;
        return load();
      },
      view() {
        const c = map.getCenter();
        return { lat: c.lat, lon: c.lng, zoom: map.getZoom() };
      },
    };
    await load();
    return controller;
  }

  window.DieuhanhMap = { draw, addLayer, layers, texts: TEXTS };
})();
