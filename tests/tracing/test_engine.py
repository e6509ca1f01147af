"""The app's tracer (SQL store + engine) against the brute-force reference, on random small worlds."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dieuhanh.tracing.engine import Rule, Window, trace
from dieuhanh.tracing.store import CheckinStore
from dieuhanh.warehouse.models import CheckIn
from tests.factories import BASE, key, write_stays

from .reference import RefRule, RefStay, reference_trace

DWELL = {0: None, 1: 45 * 60, 2: 20 * 60}  # as the trace_venues fixture sets them
FIVE_MINUTES = 300  # times on a 5-minute grid, so that stays touch and overlap by exactly 10 minutes often


@st.composite
def stays(draw) -> list[RefStay]:
    n = draw(st.integers(0, 30))
    found = []
    for _ in range(n):
        time_in = BASE + FIVE_MINUTES * draw(st.integers(0, 3 * 24 * 12))
        length = draw(st.one_of(st.none(), st.integers(0, 36).map(lambda k: k * FIVE_MINUTES)))
        found.append(
            RefStay(
                person=draw(st.integers(0, 6)),
                venue=draw(st.integers(0, 2)),
                time_in=time_in,
                time_out=None if length is None else time_in + length,
            )
        )
    return found


RULES = st.builds(
    RefRule,
    min_overlap=st.sampled_from([600, 300, 1200]),
    default_dwell=st.sampled_from([3600, 1800]),
    decay_cap=st.sampled_from([1800, 0, 600]),
    max_stay=st.sampled_from([86400, 7200]),
    contact_days=st.sampled_from([14, 1]),
)


def app_trace(case: int, start: int, end: int, rule: RefRule, now: int, depth: int):
    app_rule = Rule(**rule.__dict__)
    result = trace(CheckinStore(app_rule), Window(key(case), start, end), depth=depth, rule=app_rule, now=now)
    contacts = {
        int.from_bytes(p[:2], "big"): {
            "generation": c.generation,
            "first": c.first_exposure,
            "seconds": c.seconds,
        }
        for p, c in result.contacts.items()
    }
    edges = sorted(
        (
            int.from_bytes(e.source[:2], "big"),
            int.from_bytes(e.contact[:2], "big"),
            _venue_number(e.venue),
            e.start,
            e.end,
        )
        for e in result.edges
    )
    return contacts, edges


_VENUES: dict[int, int] = {}


def _venue_number(venue_id: int) -> int:
    return _VENUES[venue_id]


@pytest.mark.django_db
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    world_stays=stays(),
    rule=RULES,
    window=st.tuples(st.integers(0, 3 * 24 * 12), st.integers(1, 3 * 24 * 12)),
    depth=st.sampled_from([1, 2]),
)
def test_app_matches_the_brute_force_reference(platform, trace_venues, world_stays, rule, window, depth):
    CheckIn.objects.all().delete()
    _VENUES.clear()
    _VENUES.update({v.id: n for n, v in trace_venues.items()})
    write_stays(platform.source, world_stays, trace_venues)
    start = BASE + FIVE_MINUTES * window[0]
    end = start + FIVE_MINUTES * window[1]
    now = BASE + 4 * 86400

    expected = reference_trace(0, start, end, world_stays, DWELL, rule, now, depth=depth)
    assert app_trace(0, start, end, rule, now, depth) == expected


@pytest.fixture
def stays_of(platform, trace_venues):
    def run(world_stays, *, start=BASE, end=BASE + 86400, depth=2, rule=DEFAULT_RULE):
        CheckIn.objects.all().delete()
        _VENUES.clear()
        _VENUES.update({v.id: n for n, v in trace_venues.items()})
        write_stays(platform.source, world_stays, trace_venues)
        got = app_trace(0, start, end, rule, BASE + 4 * 86400, depth)
        assert got == reference_trace(0, start, end, world_stays, DWELL, rule, BASE + 4 * 86400, depth=depth)
        return got

    return run


MIN = 60
DEFAULT_RULE = RefRule()


def test_back_to_back_stays_are_no_contact_without_the_aerosol_tail(stays_of):
    rule = RefRule(decay_cap=0)
    contacts, _ = stays_of(
        [RefStay(0, 1, BASE, BASE + 30 * MIN), RefStay(1, 1, BASE + 30 * MIN, BASE + 90 * MIN)], rule=rule
    )
    assert contacts == {}


def test_arriving_just_after_the_case_left_is_a_contact_through_the_aerosol_tail(stays_of):
    contacts, edges = stays_of(
        [RefStay(0, 1, BASE, BASE + 20 * MIN), RefStay(1, 1, BASE + 20 * MIN, BASE + 90 * MIN)]
    )
    # a 20-minute stay lingers 20 minutes more: 20 minutes of overlap
    assert contacts == {1: {"generation": 1, "first": BASE + 20 * MIN, "seconds": 20 * MIN}}
    assert edges == [(0, 1, 1, BASE + 20 * MIN, BASE + 40 * MIN)]


def test_exactly_ten_minutes_is_a_contact_and_nine_is_not(stays_of):
    rule = RefRule(decay_cap=0)
    contacts, _ = stays_of(
        [
            RefStay(0, 1, BASE, BASE + 60 * MIN),
            RefStay(1, 1, BASE + 50 * MIN, BASE + 120 * MIN),  # 10 minutes
            RefStay(2, 1, BASE + 51 * MIN, BASE + 120 * MIN),  # 9 minutes (and an F2 through 1)
        ],
        rule=rule,
        depth=1,
    )
    assert set(contacts) == {1}
    assert contacts[1]["seconds"] == 10 * MIN


def test_a_stay_of_the_case_outside_its_window_does_not_count(stays_of):
    contacts, _ = stays_of(
        [RefStay(0, 1, BASE - 3600, BASE - 600), RefStay(1, 1, BASE - 3600, BASE)],
        start=BASE,
    )
    assert contacts == {}


def test_a_missing_check_out_lasts_the_venues_dwell_time_or_an_hour(stays_of):
    contacts, _ = stays_of(
        [
            RefStay(0, 2, BASE, None),  # venue 2: 20-minute dwell, so the case is there until +20 (+20 tail)
            RefStay(1, 2, BASE + 35 * MIN, None),  # 5 minutes inside the tail: not enough
            RefStay(0, 0, BASE + 5 * 3600, None),  # venue 0: no dwell set, an hour
            RefStay(2, 0, BASE + 5 * 3600 + 50 * MIN, None),  # 10 minutes before the case leaves, +30 tail
        ]
    )
    assert set(contacts) == {2}
    assert contacts[2]["seconds"] == 40 * MIN


def test_a_person_both_f1_and_f2_appears_once_with_both_paths(stays_of):
    contacts, edges = stays_of(
        [
            RefStay(0, 1, BASE, BASE + 60 * MIN),
            RefStay(1, 1, BASE, BASE + 60 * MIN),  # F1
            RefStay(2, 1, BASE + 30 * MIN, BASE + 60 * MIN),  # F1, and exposed to 1 at the same time: F2 too
            RefStay(1, 2, BASE + 3 * 3600, BASE + 4 * 3600),
            RefStay(3, 2, BASE + 3 * 3600, BASE + 4 * 3600),  # F2 only, through 1
        ]
    )
    assert contacts[2]["generation"] == 1
    assert {e[0] for e in edges if e[1] == 2} == {0, 1}
    assert contacts[3]["generation"] == 2
    assert Counter(e[1] for e in edges)[2] == 2


def test_f2_counts_only_stays_after_the_f1s_first_exposure(stays_of):
    contacts, _ = stays_of(
        [
            RefStay(1, 2, BASE - 3600 * 3, BASE - 3600 * 2),  # 1 meets 3 before 1 was exposed
            RefStay(3, 2, BASE - 3600 * 3, BASE - 3600 * 2),
            RefStay(0, 1, BASE, BASE + 60 * MIN),
            RefStay(1, 1, BASE, BASE + 60 * MIN),
        ],
        start=BASE - 86400,
    )
    assert set(contacts) == {1}
