"""The tracing workspace's graph: drawn by the page when small, handed to the browser as data when
large, and grouped by venue or by commune of residence so that thousands of contacts stay readable."""

from __future__ import annotations

import json
import re

from dieuhanh.commandroom import tracing_graph
from dieuhanh.tracing import services
from dieuhanh.tracing.models import Case
from tests.factories import register


def _view(tracers):
    case = Case.objects.get(pk=register(tracers.national).json()["id"])
    return services.contacts(actor=tracers.national.user, case=case, depth=2, rule=services.Rule())


def test_a_small_graph_is_every_person_drawn_by_the_page(tracers, outbreak):
    data = tracing_graph.graph_data(_view(tracers))
    assert data["mode"] == "person" and data["server_drawn"]
    assert sorted(n["g"] for n in data["nodes"]) == [0, 1, 1, 2, 2]
    case = data["nodes"][0]
    assert (case["g"], case["x"], case["y"], case["r"]) == (0, 320.0, 320.0, 14.0)
    assert len(data["lines"]) == len(data["links"]) >= 3


def test_grouped_by_commune_the_counts_add_up(tracers, outbreak):
    view = _view(tracers)
    data = tracing_graph.graph_data(view, "commune")
    groups = {(n["g"], n["label"]): n["count"] for n in data["nodes"] if n["g"]}
    # F2 of P1 at the office: P2 (lives in Bến Thành) and P3 (Sài Gòn).
    assert sum(groups.values()) == len(view.contacts)
    assert groups[(2, "Phường Bến Thành")] == 1 and groups[(2, "Phường Sài Gòn")] == 1
    assert all(0 <= a < len(data["nodes"]) and 0 <= b < len(data["nodes"]) for a, b in data["links"])


def test_beyond_the_thresholds_auto_groups_and_the_browser_draws(tracers, outbreak, monkeypatch):
    monkeypatch.setattr(tracing_graph, "COMMUNE_BEYOND", 2)
    monkeypatch.setattr(tracing_graph, "SERVER_DRAWN", 2)
    data = tracing_graph.graph_data(_view(tracers))
    assert data["mode"] == "commune" and not data["server_drawn"] and "lines" not in data


def test_the_page_hands_a_large_graph_to_the_browser(tracers, outbreak, monkeypatch):
    monkeypatch.setattr(tracing_graph, "SERVER_DRAWN", 2)
    case_id = register(tracers.a).json()["id"]
    page = (
        tracers.a.browser().get(f"/tracing/cases/{case_id}/", {"depth": 2, "group": "venue"}).content.decode()
    )
    assert 'class="node g1' not in page  # nothing drawn by the server
    found = re.search(r'<script id="graph-data" type="application/json">(.*?)</script>', page, re.S)
    data = json.loads(found.group(1))
    assert data["mode"] == "venue" and {n["label"] for n in data["nodes"] if n["g"]} <= {
        "V-BT-CHO",
        "V-SG-VP",
    }
    assert "tracing_graph.js" in page and '<option value="venue" selected>' in page
