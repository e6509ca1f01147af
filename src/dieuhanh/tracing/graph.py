"""The chain of transmission laid out for drawing: the case in the centre, F1 on the inner ring, F2
on the outer, each ring ordered by venue so that people met at one place sit together.

Beyond `limit` people a drawing of single people is unreadable and slow to render, so the F2 ring is
drawn as one node per (F1, venue) group sized by its count; beyond `limit` F1s, F1 too is grouped
by venue. The tables beside the graph always list everyone."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from dieuhanh.tracing.services import TraceView

SIZE = 640
RINGS = {0: 0.0, 1: 170.0, 2: 290.0}
LIMIT = 300


@dataclass
class Node:
    id: str
    generation: int
    label: str
    count: int  # people this node stands for
    x: float = 0.0
    y: float = 0.0
    is_case: bool = False


@dataclass
class Link:
    source: str
    target: str


@dataclass
class Graph:
    nodes: list[Node]
    links: list[tuple[Node, Node]]
    grouped: bool
    size: int = SIZE


def layout(view: TraceView, limit: int = LIMIT) -> Graph:
    venue_code = {v: venue.code for v, venue in view.venues.items()}
    case_id = bytes(view.case.person_key).hex()
    nodes: dict[str, Node] = {case_id: Node(case_id, 0, "F0", 1, is_case=True)}
    node_of: dict[bytes, str] = {bytes(view.case.person_key): case_id}
    by_generation = defaultdict(list)
    for c in view.contacts:
        by_generation[c.generation].append(c)
    grouped = False
    for generation in (1, 2):
        people = by_generation.get(generation, [])
        group = len(people) > limit or (generation == 2 and len(view.contacts) > limit)
        grouped |= group
        for c in sorted(people, key=lambda c: (venue_code[c.edges[0].venue], c.person)):
            first = c.edges[0]
            if group:
                node_id = f"g{generation}:{first.source.hex()}:{first.venue}"
                label = venue_code[first.venue]
            else:
                node_id, label = c.person.hex(), c.person[:3].hex()
            node = nodes.get(node_id)
            if node is None:
                node = nodes[node_id] = Node(node_id, generation, label, 0, is_case=c.is_case)
            node.count += 1
            node_of[c.person] = node_id
    _place(list(nodes.values()))
    seen: set[tuple[str, str]] = set()
    links = []
    for e in view.edges:
        pair = (node_of.get(e.source, ""), node_of.get(e.contact, ""))
        if pair[0] and pair[1] and pair[0] != pair[1] and pair not in seen:
            seen.add(pair)
            links.append((nodes[pair[0]], nodes[pair[1]]))
    return Graph(list(nodes.values()), links, grouped)


def _place(nodes: list[Node]) -> None:
    centre = SIZE / 2
    for generation, radius in RINGS.items():
        ring = [n for n in nodes if n.generation == generation]
        for i, node in enumerate(ring):
            angle = 2 * math.pi * i / max(1, len(ring)) - math.pi / 2
            node.x = round(centre + radius * math.cos(angle), 1)
            node.y = round(centre + radius * math.sin(angle), 1)
