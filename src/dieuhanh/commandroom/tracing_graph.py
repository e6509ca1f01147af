"""The chain of transmission ready to draw: nodes in ring order (the case, then F1, then F2), each
with its place and size, and links between them by index. Up to SERVER_DRAWN nodes the page draws
them itself (no script needed, instant); beyond, the browser draws them progressively from the same
data (tracing_graph.js), a batch per frame, so that thousands of nodes neither freeze the page nor
bloat the HTML.

Single people are drawn up to a few hundred (tracing.graph.layout's limit); beyond, people met at one
venue become one node (layout's grouping); when even that gives too many nodes to read, each
generation is grouped by commune of residence, which is also how the lists go out to communes."""

from __future__ import annotations

import math
from typing import Any

from django.utils.translation import gettext as _

from dieuhanh.tracing.graph import RINGS, SIZE, Graph, layout
from dieuhanh.tracing.services import TraceView

MODES = ("auto", "person", "venue", "commune")
PERSON_MAX = 2000  # people drawn one by one, when asked for
COMMUNE_BEYOND = 600  # nodes after grouping by venue beyond which "auto" groups by commune
SERVER_DRAWN = 300  # nodes the page draws itself; more are drawn by the browser


def graph_data(view: TraceView, mode: str = "auto") -> dict[str, Any]:
    data = _grouped(view, mode)
    _place(data["nodes"])
    data["server_drawn"] = len(data["nodes"]) <= SERVER_DRAWN
    if data["server_drawn"]:
        nodes = data["nodes"]
        data["lines"] = [
            (nodes[a]["x"], nodes[a]["y"], nodes[b]["x"], nodes[b]["y"]) for a, b in data["links"]
        ]
    return data


def _grouped(view: TraceView, mode: str) -> dict[str, Any]:
    if mode == "commune":
        return by_commune(view)
    if mode == "venue":
        return _plain(layout(view, limit=0), "venue")
    if mode == "person" and len(view.contacts) <= PERSON_MAX:
        return _plain(layout(view, limit=PERSON_MAX), "person")
    graph = layout(view)
    if len(graph.nodes) > COMMUNE_BEYOND:
        return by_commune(view)
    return _plain(graph, "venue" if graph.grouped else "person")


def _place(nodes: list[dict[str, Any]]) -> None:
    """Each ring's nodes evenly round it, in order; a single person's circle shrinks on a crowded ring."""
    centre = SIZE / 2
    for generation, radius in RINGS.items():
        ring = [n for n in nodes if n["g"] == generation]
        single = min(6.0, max(1.5, math.pi * radius / max(1, len(ring))))
        for i, node in enumerate(ring):
            angle = 2 * math.pi * i / max(1, len(ring)) - math.pi / 2
            node["x"] = round(centre + radius * math.cos(angle), 1)
            node["y"] = round(centre + radius * math.sin(angle), 1)
            node["r"] = _radius(node, single)


def _radius(node: dict[str, Any], single: float) -> float:
    if node["g"] == 0:
        return 14.0
    if node["count"] > 1:  # area tracks the number of people
        return round(min(30.0, 6 + 2 * node["count"] ** 0.5), 1)
    return round(single, 1)


def _plain(graph: Graph, mode: str) -> dict[str, Any]:
    index = {node.id: i for i, node in enumerate(graph.nodes)}
    nodes = [
        {"id": n.id, "g": n.generation, "label": n.label, "count": n.count, "case": n.is_case}
        for n in graph.nodes
    ]
    links = [[index[a.id], index[b.id]] for a, b in graph.links]
    return {"mode": mode, "size": SIZE, "nodes": nodes, "links": links}


def by_commune(view: TraceView) -> dict[str, Any]:
    """One node per generation and commune of residence, sized by its people; linked where a person
    of one infected a person of the other."""
    case_key = bytes(view.case.person_key)
    nodes: dict[str, dict[str, Any]] = {
        "case": {"id": "case", "g": 0, "label": "F0", "count": 1, "case": True}
    }
    node_of = {case_key: "case"}
    unknown = _("No health declaration")
    for c in view.contacts:
        commune = c.residence
        node_id = f"c{c.generation}:{commune.pk if commune else 0}"
        node = nodes.setdefault(
            node_id,
            {"id": node_id, "g": c.generation, "label": commune.name if commune else unknown, "count": 0},
        )
        node["count"] += 1
        node["case"] = node.get("case", False) or c.is_case
        node_of[c.person] = node_id
    ordered = sorted(nodes.values(), key=lambda n: (n["g"], n["label"]))
    index = {n["id"]: i for i, n in enumerate(ordered)}
    pairs = {(node_of.get(e.source), node_of.get(e.contact)) for e in view.edges}
    links = sorted([index[a], index[b]] for a, b in pairs if a is not None and b is not None and a != b)
    return {"mode": "commune", "size": SIZE, "nodes": ordered, "links": links}
