"""The graph layout stays drawable when a trace is large: people grouped by venue beyond a limit."""

from __future__ import annotations

from dieuhanh.tracing import services
from dieuhanh.tracing.graph import layout
from dieuhanh.tracing.models import Case
from tests.factories import CASE, hexkey, register


def _view(tracers) -> services.TraceView:
    case = Case.objects.get(pk=register(tracers.national).json()["id"])
    return services.contacts(actor=tracers.national.user, case=case, depth=2, rule=services.Rule())


def test_every_person_is_a_node_below_the_limit(tracers, outbreak):
    graph = layout(_view(tracers))
    assert not graph.grouped
    assert sorted(n.generation for n in graph.nodes) == [0, 1, 1, 2, 2]
    centre = next(n for n in graph.nodes if n.generation == 0)
    assert (centre.x, centre.y) == (graph.size / 2, graph.size / 2)
    assert all(0 <= n.x <= graph.size and 0 <= n.y <= graph.size for n in graph.nodes)


def test_beyond_the_limit_people_are_grouped_by_venue_and_counted(tracers, outbreak):
    graph = layout(_view(tracers), limit=1)
    assert graph.grouped
    groups = [n for n in graph.nodes if n.generation > 0]
    assert sum(n.count for n in groups) == 4 and len(groups) < 4
    assert {n.label for n in groups} <= {"V-BT-CHO", "V-SG-VP"}
    case = next(n for n in graph.nodes if n.generation == 0)  # the case stays a node of its own
    assert case.count == 1 and case.id == hexkey(CASE)
