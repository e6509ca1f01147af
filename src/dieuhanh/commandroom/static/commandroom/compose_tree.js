// The composer's unit tree: the caller's units, each opened on demand (its children fetched from the
// area-scoped tree.json), each with a box that adds or removes its reference in the #units field.
// The field stays the one source of truth: the page's live count listens to its input events, and
// typing in it ticks the boxes to match.
(() => {
  const script = document.currentScript;
  const tree = document.getElementById("unit-tree");
  const field = document.getElementById("units");
  if (!tree || !field) return;
  const language = document.documentElement.lang || "vi";

  const refs = () => field.value.split(/[\s,]+/).filter(Boolean);
  const choose = (ref, on) => {
    const list = refs().filter((r) => r !== ref);
    if (on) list.push(ref);
    field.value = list.join(", ");
    field.dispatchEvent(new Event("input"));
  };

  const load = async (list, parent) => {
    const url = new URL(tree.dataset.url, window.location.href);
    if (parent) url.searchParams.set("parent", parent);
    list.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) throw new Error(response.statusText);
      const { items } = await response.json();
      const chosen = new Set(refs());
      list.replaceChildren(...items.map((item) => node(item, chosen, !parent)));
    } catch {
      const failed = document.createElement("li");
      failed.className = "error";
      failed.textContent = script.dataset.failed;
      list.replaceChildren(failed);
      delete list.dataset.loaded; // the next opening tries again
    } finally {
      list.removeAttribute("aria-busy");
    }
  };

  const toggle = (item, sub) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "toggle";
    button.textContent = "▸";
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-controls", sub.id);
    button.setAttribute("aria-label", `${script.dataset.open} ${item.name}`);
    button.addEventListener("click", () => {
      const open = button.getAttribute("aria-expanded") !== "true";
      button.setAttribute("aria-expanded", String(open));
      button.setAttribute("aria-label", `${open ? script.dataset.close : script.dataset.open} ${item.name}`);
      button.textContent = open ? "▾" : "▸";
      sub.hidden = !open;
      if (open && !sub.dataset.loaded) {
        sub.dataset.loaded = "1";
        load(sub, item.ref);
      }
    });
    return button;
  };

  const node = (item, chosen, top) => {
    const li = document.createElement("li");
    const id = `tree-${item.ref.replace(/[^A-Za-z0-9]/g, "-")}`;
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = id;
    box.value = item.ref;
    box.checked = chosen.has(item.ref);
    box.addEventListener("change", () => choose(item.ref, box.checked));
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = item.name;
    if (top) {
      // The top units may be the nation on both maps: the reference tells them apart.
      const ref = document.createElement("span");
      ref.className = "muted";
      ref.textContent = ` ${item.ref}`;
      label.append(ref);
    }
    if (item.children) {
      const count = document.createElement("span");
      count.className = "muted";
      count.textContent = ` (${item.children.toLocaleString(language)})`;
      label.append(count);
      const sub = document.createElement("ul");
      sub.id = `${id}-children`;
      sub.hidden = true;
      li.append(toggle(item, sub), box, label, sub);
    } else {
      const spacer = document.createElement("span");
      spacer.className = "toggle";
      li.append(spacer, box, label);
    }
    return li;
  };

  field.addEventListener("input", () => {
    const chosen = new Set(refs());
    tree.querySelectorAll("input[type=checkbox]").forEach((box) => {
      box.checked = chosen.has(box.value);
    });
  });
  load(tree, "");
})();
