// The live count: asks the API how many units the current choice reaches, as the user types.
// The word after the number comes translated in #target-count's data-units (no inline script: the CSP).
(() => {
  const out = document.getElementById("target-count");
  const fields = ["units", "level", "group"].map((id) => document.getElementById(id));
  if (!out || fields.some((f) => !f)) return;
  let timer;
  const update = async () => {
    const params = new URLSearchParams();
    fields.forEach((f) => { if (f.value.trim()) params.set(f.name, f.value.trim()); });
    if (!params.has("units") && !params.has("group")) { out.textContent = ""; return; }
    const response = await fetch(`/api/v1/directives/targets?${params}`, { credentials: "same-origin" });
    const body = await response.json();
    out.textContent = response.ok
      ? `${body.count.toLocaleString("vi-VN")} ${out.dataset.units}: ${body.sample.join(", ")}${body.count > body.sample.length ? ", …" : ""}`
      : body.detail;
  };
  fields.forEach((f) => f.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 250); }));
  update();
})();
