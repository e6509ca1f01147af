// The wall (/wall/): turns through its views (the unit, then the units below it over a threshold)
// every N seconds, and stays live by the room's stream of its top unit: new figures reload the tiles,
// the map and the charts of the view shown; every event also goes to the ticker. Settings come from
// the page's JSON block (#wall-config), never from an inline script.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("wall-config").textContent);
  const root = document.getElementById("wall");
  const text = config.text;
  const lang = document.documentElement.lang === "en" ? "en" : "vi";
  const numbers = new Intl.NumberFormat(lang === "en" ? "en" : "vi-VN");
  const mapElement = document.getElementById("wall-map");
  const figure = mapElement.dataset.figure;
  const live = document.getElementById("wall-live");
  const ticker = document.getElementById("wall-ticker");
  const TICKER_ITEMS = 6;
  let views = config.views;
  let index = 0;

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_m, key) => (values[key] == null ? "" : String(values[key])));
  }

  // Vietnam's date and time, in Vietnamese form: 14:30:05 · 26/8/2021.
  const clockParts = new Intl.DateTimeFormat("en-GB", {
    timeZone: "Asia/Ho_Chi_Minh", year: "numeric", month: "numeric", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  function clockText(when) {
    const p = Object.fromEntries(clockParts.formatToParts(when).map((x) => [x.type, x.value]));
    const day = `${Number(p.day)}/${Number(p.month)}/${p.year}`;
    return lang === "en" ? `${p.year}-${p.month.padStart(2, "0")}-${p.day.padStart(2, "0")} ${p.hour}:${p.minute}:${p.second}` : `${p.hour}:${p.minute}:${p.second} · ${day}`;
  }
  function tick() {
    const clock = document.getElementById("wall-clock");
    const now = new Date();
    clock.textContent = clockText(now);
    clock.dateTime = now.toISOString();
  }

  function view() {
    return views[index % views.length];
  }

  async function loadParts(unit, names) {
    const params = new URLSearchParams({ unit, parts: names.join(",") });
    const response = await fetch(`${config.urls.parts}?${params}`);
    if (!response.ok) return;
    const parts = await response.json();
    for (const [name, html] of Object.entries(parts)) {
      const target = document.getElementById(`wall-${name}`);
      if (target) target.innerHTML = html;
    }
  }

  async function loadMap(unit) {
    const drawn = await window.DieuhanhWallMap.draw(mapElement, {
      unit, figure, mapUrl: config.urls.map, shapesBase: `${config.urls.room}shapes/`,
    });
    const legend = document.getElementById("wall-map-legend");
    if (drawn && drawn.scale) {
      legend.textContent = drawn.scale.max ? `0 → ${numbers.format(drawn.scale.max)}` : "";
    }
  }

  async function show(parts) {
    const current = view();
    const names = parts || ["tiles", "alerts", "directives", "map", "charts"];
    document.getElementById("wall-title").textContent = current.name;
    const position = views.length > 1 ? fill(text.view, { i: (index % views.length) + 1, n: views.length }) : "";
    document.getElementById("wall-view").textContent = [position, current.reason].filter(Boolean).join(" · ");
    root.dataset.view = current.ref;
    const htmlParts = names.filter((n) => ["tiles", "alerts", "directives"].includes(n));
    await Promise.all([
      htmlParts.length ? loadParts(current.ref, htmlParts) : null,
      names.includes("map") ? loadMap(current.ref) : null,
      names.includes("charts") && window.DieuhanhCharts ? window.DieuhanhCharts.reload({ unit: current.ref, figure }) : null,
    ]);
    root.dataset.shown = current.ref;
  }

  async function next() {
    index = (index + 1) % views.length;
    if (index === 0) {
      // A full turn: the units over a threshold may have changed.
      const response = await fetch(`${config.urls.views}?${new URLSearchParams({ unit: config.unit })}`);
      if (response.ok) views = (await response.json()).views;
    }
    await show();
  }

  // The ticker: the newest first, a few at most; the alerts of the view stay below it.
  function say(message) {
    if (!message) return;
    const item = document.createElement("li");
    const time = document.createElement("time");
    const now = new Date();
    time.dateTime = now.toISOString();
    time.textContent = clockText(now).split(" ")[0].slice(0, 5);
    item.append(time, " ", message);
    ticker.prepend(item);
    root.dataset.heard = String(Number(root.dataset.heard || 0) + 1); // how many the wall has shown
    while (ticker.children.length > TICKER_ITEMS) ticker.lastElementChild.remove();
  }

  function message(event) {
    let data = {};
    try {
      data = JSON.parse(event.data || "{}");
    } catch (_e) {
      return "";
    }
    if (event.type === "figures") {
      return fill(text.figures, { kind: config.kinds[data.kind] || data.kind, n: numbers.format(data.communes || 0) });
    }
    if (event.type === "directive") {
      const row = document.querySelector(`#wall-directives [data-directive="${Number(data.directive)}"]`);
      const title = row ? row.dataset.title : `#${data.directive}`;
      const what = Array.isArray(data.event) ? data.event.map((e) => text.events[e] || e).join(", ") : text.events[data.event] || data.event;
      return fill(text.directive, { title, event: what });
    }
    if (event.type === "feedback") {
      // feedback.services.publish_item: the category and the place, never the citizen's words.
      const templates = { answered: text.feedbackAnswered, forwarded: text.feedbackForwarded, progress: text.feedbackProgress };
      const template = templates[data.event] || text.feedback;
      return fill(template, {
        title: data.category_name || data.category || data.code,
        unit: data.place || data.unit_name || "",
      });
    }
    if (event.type === "report") {
      return fill(text.report, { definition: data.definition, period: data.period, state: data.state });
    }
    return "";
  }

  // Coalesced as the room does: a screen reloads at most once per window, whatever arrives meanwhile.
  const WHAT_CHANGES = { figures: ["tiles", "alerts", "map", "charts"], directive: ["directives", "alerts"] };
  const wanted = new Set();
  let pending = null;
  let lastRun = 0;
  function refresh(event) {
    say(message(event));
    (WHAT_CHANGES[event.type] || []).forEach((part) => wanted.add(part));
    if (pending || !wanted.size) return;
    const wait = Math.max(0, lastRun + config.coalesceMs - Date.now());
    pending = setTimeout(async () => {
      pending = null;
      lastRun = Date.now();
      const names = [...wanted];
      wanted.clear();
      await show(names);
      live.textContent = `${text.live} · ${clockText(new Date()).split(" ")[0]}`;
    }, wait);
  }

  const stream = new EventSource(`${config.urls.stream}?${new URLSearchParams({ unit: config.unit })}`);
  stream.addEventListener("open", () => {
    live.textContent = text.live;
    root.dataset.live = "open";
  });
  stream.addEventListener("error", () => {
    live.textContent = text.offline;
  });
  ["figures", "directive", "feedback", "report"].forEach((name) => stream.addEventListener(name, refresh));

  tick();
  setInterval(tick, 1000);
  show(["map", "charts"]); // the parts came with the page
  setInterval(next, config.seconds * 1000);
})();
