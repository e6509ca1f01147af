// Sortable tables: each column heading of a table[data-sortable] becomes a button; a click sorts the
// rows by that column (again: the other way) and says so with aria-sort, for screen readers too.
// Numbers are read from each cell's data-value, since the text is Vietnamese (1.200 is twelve hundred).
(() => {
  const collator = new Intl.Collator(document.documentElement.lang || "vi", { numeric: true });
  const key = (row, index, numeric) => {
    const cell = row.cells[index];
    if (!numeric) return cell.textContent.trim();
    const value = parseFloat(cell.dataset.value);
    return Number.isNaN(value) ? -Infinity : value;
  };
  const sort = (table, th, index) => {
    const numeric = th.dataset.type === "number";
    // A numeric column sorts largest first on the first click: that is what a leader looks for.
    const ascending = th.getAttribute("aria-sort") ? th.getAttribute("aria-sort") !== "ascending" : !numeric;
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = key(a, index, numeric);
      const y = key(b, index, numeric);
      const order = numeric ? x - y : collator.compare(x, y);
      return ascending ? order : -order;
    });
    body.append(...rows);
    table.querySelectorAll("thead th").forEach((other) => other.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  };
  document.querySelectorAll("table[data-sortable]").forEach((table) => {
    table.querySelectorAll("thead th").forEach((th, index) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.append(...th.childNodes);
      th.append(button);
      button.addEventListener("click", () => sort(table, th, index));
    });
  });
})();
