// A large chain of transmission drawn in the browser from the page's graph data (placed by
// commandroom.tracing_graph: the case in the centre, F1 on the inner ring, F2 on the outer). Drawn in
// batches, one per animation frame, so that thousands of nodes appear progressively and the page
// stays responsive. Small graphs come drawn in the page and carry no data for this script.
(() => {
  const svg = document.getElementById("trace-graph");
  const source = svg && document.getElementById(svg.dataset.source);
  if (!source) return;
  const graph = JSON.parse(source.textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const BATCH = 600;
  const progress = document.getElementById("graph-progress");
  const format = new Intl.NumberFormat(document.documentElement.lang === "en" ? "en-US" : "vi-VN");

  const element = (name, attributes) => {
    const el = document.createElementNS(SVG, name);
    Object.entries(attributes).forEach(([key, value]) => el.setAttribute(key, value));
    return el;
  };

  const drawNode = (node) => {
    const group = element("g", { class: `node g${node.g}${node.case ? " case" : ""}`, "data-id": node.id });
    group.append(element("circle", { cx: node.x, cy: node.y, r: node.r }));
    const title = element("title", {});
    title.textContent = node.count > 1 ? `${node.label} (${format.format(node.count)})` : node.label;
    group.append(title);
    return group;
  };
  const nodes = graph.nodes;
  const drawLink = ([a, b]) => element("line", { x1: nodes[a].x, y1: nodes[a].y, x2: nodes[b].x, y2: nodes[b].y });

  // Nodes first (the case, then F1, then F2), then the links beneath them.
  const work = [
    ...graph.nodes.map((node) => () => svg.querySelector("g.nodes").append(drawNode(node))),
    ...graph.links.map((link) => () => svg.querySelector("g.links").append(drawLink(link))),
  ];
  let done = 0;
  const step = () => {
    const end = Math.min(work.length, done + BATCH);
    for (; done < end; done += 1) work[done]();
    if (progress) progress.textContent = `${svg.dataset.drawn}: ${format.format(done)}/${format.format(work.length)}`;
    if (done < work.length) window.requestAnimationFrame(step);
    else svg.setAttribute("data-complete", "true");
  };
  step();
})();
