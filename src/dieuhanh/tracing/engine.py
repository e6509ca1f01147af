"""Contact tracing's arithmetic: stays, the exposure rule, and F1/F2 found from check-ins.

Pure functions over integer epoch seconds; where the stays come from (SQL, or a test's list) is the
`Store`'s business. The rule follows Corona-Warn-App's presence tracing: a contact shares a venue
with an infectious person's stay, extended after departure for aerosols, for at least 10 minutes.

Decisions this module makes (docs/tracing.md explains them to tracers):
- a stay without check-out lasts the venue's default dwell time (the rule's when the venue has none);
- a stay is cut at `max_stay` (24 h): a check-in left open for days is a forgotten check-out, and the
  cut bounds the index range every candidate search reads;
- a source's stay counts when its check-in time lies inside the source's window [start, end);
- an F1's window starts at its first exposure and lasts `contact_days` (the incubation period), cut
  at the time of the trace;
- times are compared to the second.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import NamedTuple, Protocol

from dieuhanh.memory import no_cycle_collection

MINUTE, HOUR, DAY = 60, 3600, 86400
# Builds a NamedTuple without its generated __new__'s argument handling: half the cost, and stays and
# edges are made by the million.
new_tuple = tuple.__new__


@dataclass(frozen=True)
class Rule:
    """When a shared stay is an exposure. Every field is in seconds but `contact_days`."""

    min_overlap: int = 10 * MINUTE
    default_dwell: int = 60 * MINUTE
    decay_cap: int = 30 * MINUTE
    max_stay: int = 24 * HOUR
    contact_days: int = 14

    def __post_init__(self) -> None:
        for name in ("min_overlap", "default_dwell", "max_stay", "contact_days"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")
        if self.decay_cap < 0:
            raise ValueError("decay_cap: must not be negative")

    # Both run once per stay read (millions in a large F2): conditionals, not min() calls.
    def stay_end(self, start: int, out: int | None, dwell: int | None) -> int:
        end = out if out is not None else start + (dwell or self.default_dwell)
        cut = start + self.max_stay
        return end if end < cut else cut

    def spread_end(self, start: int, end: int) -> int:
        """Until when an infectious person's stay puts others at risk: the aerosol lingers after
        departure for as long as the stay lasted, at most `decay_cap`."""
        length = end - start
        return end + (length if length < self.decay_cap else self.decay_cap)

    def as_dict(self) -> dict[str, int]:
        return {
            "min_overlap_minutes": self.min_overlap // MINUTE,
            "default_dwell_minutes": self.default_dwell // MINUTE,
            "decay_cap_minutes": self.decay_cap // MINUTE,
            "max_stay_hours": self.max_stay // HOUR,
            "contact_days": self.contact_days,
        }


class Stay(NamedTuple):
    person: bytes
    venue: int
    start: int
    end: int  # resolved: check-out, or start + dwell, cut at max_stay


class Window(NamedTuple):
    """A person's stays with check-in in [start, end) count."""

    person: bytes
    start: int
    end: int


class Edge(NamedTuple):
    """One overlapping pair of stays: `source` was infectious while `contact` was there."""

    source: bytes
    contact: bytes
    venue: int
    start: int
    end: int

    @property
    def seconds(self) -> int:
        return self.end - self.start


class Store(Protocol):
    def stays_of(self, windows: Sequence[Window]) -> list[Stay]:
        """Every stay of each window's person with check-in inside the window."""

    def stays_at(self, ranges: Sequence[tuple[int, int, int]]) -> list[Stay]:
        """Every stay at venue v with check-in in [lo, hi], for each (v, lo, hi); each stay once."""


@dataclass
class Contact:
    person: bytes
    generation: int
    first_exposure: int
    edges: list[Edge] = field(default_factory=list)

    @property
    def seconds(self) -> int:
        """Overlap summed over every path that reaches this person."""
        return sum(e.seconds for e in self.edges)


@dataclass
class Trace:
    case: Window
    depth: int
    case_stays: list[Stay]
    contacts: dict[bytes, Contact]
    edges: list[Edge]


def exposures(store: Store, sources: Sequence[Stay], rule: Rule) -> list[Edge]:
    """Every (source stay, other stay) pair that meets the rule, the other being another person."""
    by_venue: dict[int, list[Stay]] = defaultdict(list)
    for stay in sources:
        by_venue[stay.venue].append(stay)
    venues = {venue: _VenueSources(stays, rule) for venue, stays in by_venue.items()}
    found: list[Edge] = []
    for other in store.stays_at(candidate_ranges(by_venue, rule)):
        venues[other.venue].edges_with(other, rule.min_overlap, found)
    return found


class _VenueSources:
    """One venue's infectious stays, sorted by start, with when each stops putting others at risk."""

    def __init__(self, stays: list[Stay], rule: Rule):
        stays.sort(key=lambda s: s.start)
        self.stays = stays
        self.starts = [s.start for s in stays]
        self.ends = [rule.spread_end(s.start, s.end) for s in stays]
        # The longest infectious span here: a source that overlaps another stay started at most this
        # long before it; far tighter than the rule's 24-hour bound.
        self.reach = max(end - start for start, end in zip(self.starts, self.ends, strict=True))

    def edges_with(self, other: Stay, min_overlap: int, found: list[Edge]) -> None:
        # Hot loop of F2 (millions of pairs): plain comparisons, no min()/max() calls.
        o_start, o_end, o_person = other.start, other.end, other.person
        stays, ends = self.stays, self.ends
        last = bisect_right(self.starts, o_end - min_overlap)
        for i in range(bisect_left(self.starts, o_start + min_overlap - self.reach), last):
            source = stays[i]
            start = source.start if source.start > o_start else o_start
            end = ends[i] if ends[i] < o_end else o_end
            if end - start >= min_overlap and source.person != o_person:
                found.append(new_tuple(Edge, (source.person, o_person, other.venue, start, end)))


def candidate_ranges(by_venue: dict[int, list[Stay]], rule: Rule) -> list[tuple[int, int, int]]:
    """Per venue, the check-in times a stay must have to overlap some source stay long enough:
    from (source start + min overlap − max stay) to (source's spread end − min overlap), merged."""
    ranges: list[tuple[int, int, int]] = []
    for venue, stays in by_venue.items():
        spans = sorted(
            (s.start + rule.min_overlap - rule.max_stay, rule.spread_end(s.start, s.end) - rule.min_overlap)
            for s in stays
        )
        lo, hi = spans[0]
        for a, b in spans[1:]:
            if a > hi:
                ranges.append((venue, lo, hi))
                lo, hi = a, b
            else:
                hi = max(hi, b)
        ranges.append((venue, lo, hi))
    return ranges


def trace(store: Store, case: Window, *, depth: int, rule: Rule, now: int) -> Trace:
    """The case's contacts (F1) and, at depth 2, their contacts while they may be infectious (F2)."""
    if depth not in (1, 2):
        raise ValueError("depth: must be 1 or 2")
    with no_cycle_collection():  # a large F2 builds millions of tuples
        return _trace(store, case, depth=depth, rule=rule, now=now)


def _trace(store: Store, case: Window, *, depth: int, rule: Rule, now: int) -> Trace:
    case_stays = store.stays_of([case])
    edges = exposures(store, case_stays, rule)
    contacts = _contacts(edges, generation=1, exclude=case.person)
    if depth == 2:
        windows = [
            Window(c.person, c.first_exposure, min(c.first_exposure + rule.contact_days * DAY, now))
            for c in contacts.values()
        ]
        second = [e for e in exposures(store, store.stays_of(windows), rule) if e.contact != case.person]
        for person, contact in _contacts(second, generation=2, exclude=case.person).items():
            if person in contacts:  # an F1 reached again through another F1: one contact, every path
                contacts[person].edges.extend(contact.edges)
                contacts[person].first_exposure = min(contacts[person].first_exposure, contact.first_exposure)
            else:
                contacts[person] = contact
        edges += second
    edges.sort(key=itemgetter(3, 0, 1))  # (start, source, contact): a stable order for readers
    return Trace(case, depth, case_stays, contacts, edges)


def _contacts(edges: Iterable[Edge], *, generation: int, exclude: bytes) -> dict[bytes, Contact]:
    contacts: dict[bytes, Contact] = {}
    for edge in edges:
        if edge.contact == exclude:
            continue
        contact = contacts.get(edge.contact)
        if contact is None:
            contacts[edge.contact] = Contact(edge.contact, generation, edge.start, [edge])
        else:
            contact.first_exposure = min(contact.first_exposure, edge.start)
            contact.edges.append(edge)
    return contacts
