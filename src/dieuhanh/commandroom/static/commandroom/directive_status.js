// A directive's status page follows the units' acknowledgements and responses as they come: every
// few seconds it asks status.json (counted in the caller's area, as the page) and updates the table
// and the list of units still owing, without a reload. Polling, not the inbox stream: the stream is
// per unit, and this page counts many units at once.
(() => {
  const table = document.querySelector("table.status[data-poll]");
  if (!table) return;
  const EVERY_MS = 4000;
  const format = new Intl.NumberFormat(document.documentElement.lang === "en" ? "en-US" : "vi-VN");
  const stamp = document.getElementById("status-updated");

  const fill = (row, counts) => {
    row.querySelectorAll("[data-field]").forEach((cell) => {
      const text = format.format(counts[cell.dataset.field] ?? 0);
      if (cell.textContent !== text) cell.textContent = text;
    });
  };

  const update = (status) => {
    const byUnit = new Map(status.provinces.map((p) => [p.unit, p]));
    table.querySelectorAll("tr[data-unit]").forEach((row) => {
      const counts = row.dataset.unit ? byUnit.get(row.dataset.unit) : status;
      if (counts) fill(row, counts);
    });
    const pending = new Set(status.pending);
    document.querySelectorAll("ul.pending li[data-ref]").forEach((item) => {
      item.hidden = !pending.has(item.dataset.ref);
    });
    if (stamp) stamp.textContent = `${table.dataset.updated} ${new Date().toLocaleTimeString(document.documentElement.lang || "vi")}`;
  };

  const poll = async () => {
    if (!document.hidden) {
      try {
        const response = await fetch(table.dataset.poll, { credentials: "same-origin" });
        if (response.ok) update(await response.json());
      } catch {
        // The network dropped; the next round tries again.
      }
    }
    window.setTimeout(poll, EVERY_MS);
  };
  window.setTimeout(poll, EVERY_MS);
})();
