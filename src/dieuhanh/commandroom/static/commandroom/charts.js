// The room's charts (room, unit page, wall): each <figure data-chart> loads its table from
// room/charts/NAME.json, draws it with ECharts (canvas), fills its data table (the same rows, as the
// server wrote their numbers and dates in Vietnamese) and offers PNG (the canvas) and CSV (the server's
// file, its cells made safe by dieuhanh.sheets). No inline script or style: CSP allows 'self' only, and
// tooltips are drawn on the canvas (renderMode richText), not as HTML.
(function () {
  "use strict";
  const lang = document.documentElement.lang === "en" ? "en" : "vi";
  const numbers = new Intl.NumberFormat(lang === "en" ? "en" : "vi-VN", { maximumFractionDigits: 2 });
  const COLOURS = { test: "#7f9cbf", positive: "#d7301f", testAvg: "#0b4f9c", positiveAvg: "#8a1010" };

  function shortDay(iso) {
    const [y, m, d] = iso.split("-").map(Number);
    return lang === "en" ? `${m}/${d}` : `${d}/${m}`;
  }

  function fontSize(holder) {
    // On the wall the type grows with the screen (legible from 5 m); elsewhere the page's own size.
    return holder.theme === "dark" ? Math.max(14, Math.round(window.innerHeight / 62)) : 12;
  }

  function column(table, key) {
    return table.columns.findIndex((c) => c.key === key);
  }

  function values(table, key) {
    const i = column(table, key);
    return table.rows.map((row) => row[i]);
  }

  function base(holder, size) {
    return {
      backgroundColor: "transparent",
      animation: false,
      textStyle: { fontSize: size },
      tooltip: { trigger: "axis", renderMode: "richText", valueFormatter: (v) => (v == null ? "—" : numbers.format(v)) },
      legend: { type: "scroll", top: 0, textStyle: { fontSize: size }, itemWidth: size * 1.4, itemHeight: size * 0.8, pageTextStyle: { fontSize: size } },
      grid: { left: 8, right: 8, top: size * 2.4, bottom: 4, containLabel: true },
    };
  }

  function axisLabel(size, formatter) {
    return { fontSize: size, formatter: formatter || ((v) => numbers.format(v)) };
  }

  const OPTIONS = {
    curve(table, size) {
      const names = table.columns.map((c) => c.label);
      return {
        xAxis: { type: "category", data: values(table, "day").map(shortDay), axisLabel: { fontSize: size } },
        // Tests on the left axis, positives on the right (far fewer): the legend's colours say which.
        yAxis: [
          { type: "value", axisLabel: axisLabel(size) },
          { type: "value", axisLabel: axisLabel(size), splitLine: { show: false } },
        ],
        series: [
          { name: names[1], type: "bar", data: values(table, "test"), itemStyle: { color: COLOURS.test }, barCategoryGap: "20%" },
          { name: names[2], type: "bar", yAxisIndex: 1, data: values(table, "positive"), itemStyle: { color: COLOURS.positive } },
          { name: names[3], type: "line", data: values(table, "test_avg"), showSymbol: false, lineStyle: { width: 3 }, itemStyle: { color: COLOURS.testAvg } },
          { name: names[4], type: "line", yAxisIndex: 1, data: values(table, "positive_avg"), showSymbol: false, lineStyle: { width: 3 }, itemStyle: { color: COLOURS.positiveAvg } },
        ],
      };
    },
    series(table, size) {
      const names = table.columns.map((c) => c.label);
      return {
        xAxis: { type: "category", data: values(table, "period"), axisLabel: { fontSize: size, hideOverlap: true } },
        yAxis: { type: "value", axisLabel: axisLabel(size) },
        series: [
          { name: names[1], type: "line", data: values(table, "value"), symbolSize: size / 2, lineStyle: { width: 3 }, itemStyle: { color: "#0b4f9c" } },
          { name: names[2], type: "line", data: values(table, "last_year"), symbolSize: size / 2, lineStyle: { width: 2, type: "dashed" }, itemStyle: { color: "#8c8c8c" } },
        ],
      };
    },
    rank(table, size) {
      const groups = values(table, "group");
      const first = groups[0];
      const units = values(table, "unit");
      const data = values(table, "value").map((v, i) => ({
        value: v,
        itemStyle: { color: groups[i] === first ? "#d7301f" : "#4a8f5b" },
      }));
      return {
        legend: { show: false },
        grid: { left: 8, right: size * 3, top: 4, bottom: 4, containLabel: true },
        xAxis: { type: "value", axisLabel: axisLabel(size) },
        yAxis: { type: "category", inverse: true, data: units, axisLabel: { fontSize: size * 0.85, width: size * 9, overflow: "truncate" } },
        series: [{ name: table.columns[3].label, type: "bar", data, label: { show: true, position: "right", fontSize: size * 0.85, formatter: (p) => numbers.format(p.value) } }],
      };
    },
    targets(table, size) {
      // A bullet chart per indicator, on a common scale: the share of its target. Bands (poor, fair,
      // good) behind, the value as a bar, the target as a mark at 100%.
      const pct = values(table, "pct").map((v) => (v == null ? 0 : v));
      const top = Math.max(120, ...pct.map((v) => Math.ceil(v / 10) * 10));
      const labels = values(table, "indicator");
      const band = (to, from, colour) => ({ type: "bar", stack: "bands", silent: true, data: labels.map(() => to - from), barWidth: "70%", itemStyle: { color: colour } });
      return {
        legend: { show: false },
        tooltip: { trigger: "item", renderMode: "richText", formatter: (p) => `${labels[p.dataIndex]}: ${numbers.format(pct[p.dataIndex])}%` },
        grid: { left: 8, right: size * 2, top: 4, bottom: 4, containLabel: true },
        xAxis: { type: "value", max: top, axisLabel: axisLabel(size, (v) => `${numbers.format(v)}%`) },
        yAxis: { type: "category", data: labels, axisLabel: { fontSize: size * 0.85, width: size * 10, overflow: "truncate" } },
        series: [
          band(50, 0, "rgba(140,140,140,0.45)"),
          band(80, 50, "rgba(140,140,140,0.3)"),
          band(top, 80, "rgba(140,140,140,0.15)"),
          { type: "bar", data: pct, barWidth: "28%", barGap: "-100%", z: 3, itemStyle: { color: "#0b4f9c" } },
          { type: "scatter", data: labels.map((_l, i) => [100, i]), symbol: "rect", symbolSize: [4, size * 1.6], z: 4, itemStyle: { color: "#d7301f" }, silent: true },
        ],
      };
    },
  };

  function fillTable(figure, table) {
    const caption = figure.querySelector(".chart-table caption");
    caption.textContent = table.title;
    const head = document.createElement("tr");
    table.columns.forEach((c) => {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = c.label;
      if (c.type === "number") th.className = "num";
      head.append(th);
    });
    figure.querySelector(".chart-table thead").replaceChildren(head);
    figure.querySelector(".chart-table tbody").replaceChildren(
      ...table.text.map((cells) => {
        const tr = document.createElement("tr");
        cells.forEach((text, i) => {
          const td = document.createElement("td");
          td.textContent = text;
          if (table.columns[i].type === "number") td.className = "num";
          tr.append(td);
        });
        return tr;
      })
    );
  }

  function fillChoices(figure, table) {
    const select = figure.querySelector(".chart-choice");
    if (!select || !table.choices) return;
    select.replaceChildren(
      ...table.choices.map((c) => {
        const option = document.createElement("option");
        option.value = c.code;
        option.textContent = c.name;
        option.selected = c.code === table.choice;
        return option;
      })
    );
    select.hidden = table.choices.length < 2;
  }

  // ECharts (700 kB) is fetched once the page has painted, so that it never delays the first paint;
  // the titles and data tables are in place before it arrives.
  let echartsReady = null;
  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = resolve;
      script.onerror = reject;
      document.head.append(script);
    });
  }
  function needEcharts(element) {
    if (window.echarts) return Promise.resolve();
    if (!echartsReady) {
      echartsReady = new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)))
        .then(() => loadScript(element.dataset.echartsSrc))
        .then(() => loadScript(element.dataset.echartsLocaleSrc));
    }
    return echartsReady;
  }

  class Holder {
    constructor(element) {
      this.element = element;
      this.theme = element.dataset.theme || "";
      this.params = { unit: element.dataset.unit };
      this.charts = new Map();
      element.querySelectorAll("figure[data-chart]").forEach((figure) => this.wire(figure));
    }

    wire(figure) {
      figure.querySelector(".chart-png").addEventListener("click", () => this.png(figure));
      const select = figure.querySelector(".chart-choice");
      if (select) {
        select.addEventListener("change", () => {
          figure.dataset.dx = select.value;
          this.loadOne(figure);
        });
      }
    }

    query(figure) {
      const params = new URLSearchParams();
      Object.entries(this.params).forEach(([k, v]) => v && params.set(k, v));
      if (figure.dataset.dx) params.set("dx", figure.dataset.dx);
      return params.toString();
    }

    async loadOne(figure) {
      const query = this.query(figure);
      const response = await fetch(`${figure.dataset.json}?${query}`, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const table = await response.json();
      figure.querySelector(".chart-title").textContent = table.title;
      figure.querySelector(".chart-note").textContent = table.note || (table.rows.length ? "" : this.element.dataset.textEmpty);
      const csv = figure.querySelector(".chart-csv");
      csv.href = `${figure.dataset.csv}?${query}`;
      fillTable(figure, table);
      fillChoices(figure, table);
      const canvas = figure.querySelector(".chart-canvas");
      canvas.setAttribute("aria-label", table.title);
      await needEcharts(this.element);
      let chart = this.charts.get(figure);
      if (!chart && window.echarts) {
        chart = echarts.init(canvas, this.theme || null, { renderer: "canvas", locale: lang === "en" ? "EN" : "VI" });
        this.charts.set(figure, chart);
      }
      if (chart) {
        const size = fontSize(this);
        const option = Object.assign(base(this, size), OPTIONS[table.id](table, size));
        if (!table.rows.length) {
          option.title = { text: this.element.dataset.textEmpty, left: "center", top: "middle", textStyle: { fontSize: size, fontWeight: "normal" } };
        }
        chart.setOption(option, true);
      }
      figure.dataset.rows = String(table.rows.length);
      figure.dataset.loaded = query;
    }

    load(params) {
      Object.assign(this.params, params || {});
      return Promise.all([...this.element.querySelectorAll("figure[data-chart]")].map((f) => this.loadOne(f)));
    }

    resize() {
      this.charts.forEach((chart) => chart.resize());
    }

    png(figure) {
      const chart = this.charts.get(figure);
      if (!chart) return;
      const background = this.theme === "dark" ? "#10161f" : "#ffffff";
      const link = document.createElement("a");
      link.href = chart.getDataURL({ type: "png", pixelRatio: 2, backgroundColor: background });
      link.download = `bieu-do-${figure.dataset.chart}-${(this.params.unit || "").replace(":", "-")}.png`;
      document.body.append(link);
      link.click();
      link.remove();
    }
  }

  const holders = [...document.querySelectorAll("[data-charts]")].map((element) => new Holder(element));
  window.DieuhanhCharts = {
    holders,
    // Reload every chart (after new figures), or with other parameters (the wall's next unit, the
    // room's figure).
    reload(params) {
      return Promise.all(holders.map((h) => h.load(params)));
    },
  };
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => holders.forEach((h) => h.resize()), 150);
  });
  // The room tells when it read its figures again (room.js).
  document.addEventListener("room:refreshed", (event) => {
    const names = (event.detail && event.detail.parts) || [];
    if (names.includes("tiles")) window.DieuhanhCharts.reload();
  });
  const figureSelect = document.getElementById("room-figure");
  if (figureSelect) {
    figureSelect.addEventListener("change", () => window.DieuhanhCharts.reload({ figure: figureSelect.value }));
  }
  if (!document.documentElement.classList.contains("wall")) {
    window.DieuhanhCharts.reload(figureSelect ? { figure: figureSelect.value } : {});
  }
})();
