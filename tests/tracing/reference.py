"""A brute-force tracer, written from the issue's words without the app's code: every pair of stays
is compared. Slow on purpose; the property tests hold the app to it."""

from __future__ import annotations

from dataclasses import dataclass

MIN = 60


@dataclass(frozen=True)
class RefStay:
    person: int
    venue: int
    time_in: int  # epoch seconds
    time_out: int | None


@dataclass(frozen=True)
class RefRule:
    min_overlap: int = 10 * MIN
    default_dwell: int = 60 * MIN
    decay_cap: int = 30 * MIN
    max_stay: int = 24 * 3600
    contact_days: int = 14


def leaves(stay: RefStay, dwell: dict[int, int | None], rule: RefRule) -> int:
    if stay.time_out is not None:
        end = stay.time_out
    else:
        end = stay.time_in + (dwell.get(stay.venue) or rule.default_dwell)
    return min(end, stay.time_in + rule.max_stay)


def infectious_until(stay: RefStay, dwell: dict[int, int | None], rule: RefRule) -> int:
    end = leaves(stay, dwell, rule)
    length = end - stay.time_in
    return end + (length if length <= rule.decay_cap else rule.decay_cap)


def edges_from(
    person: int, start: int, end: int, stays: list[RefStay], dwell: dict[int, int | None], rule: RefRule
) -> list[tuple[int, int, int, int, int]]:
    """(from, to, venue, overlap start, overlap end) for each of `person`'s stays checked in within
    [start, end) against every other person's stay at the same venue."""
    found = []
    for mine in stays:
        if mine.person != person or not start <= mine.time_in < end:
            continue
        for theirs in stays:
            if theirs.person == person or theirs.venue != mine.venue:
                continue
            lo = max(mine.time_in, theirs.time_in)
            hi = min(infectious_until(mine, dwell, rule), leaves(theirs, dwell, rule))
            if hi - lo >= rule.min_overlap:
                found.append((person, theirs.person, mine.venue, lo, hi))
    return found


def reference_trace(
    case: int,
    start: int,
    end: int,
    stays: list[RefStay],
    dwell: dict[int, int | None],
    rule: RefRule,
    now: int,
    depth: int = 2,
) -> tuple[dict[int, dict], list[tuple]]:
    """({contact: {generation, first, seconds}}, edges)."""
    edges = edges_from(case, start, end, stays, dwell, rule)
    f1: dict[int, int] = {}
    for _, to, _, lo, _ in edges:
        f1[to] = min(lo, f1.get(to, lo))
    all_edges = list(edges)
    if depth == 2:
        for person, first in f1.items():
            until = min(first + rule.contact_days * 86400, now)
            all_edges += [e for e in edges_from(person, first, until, stays, dwell, rule) if e[1] != case]
    contacts: dict[int, dict] = {}
    for _, to, _, lo, hi in all_edges:
        c = contacts.setdefault(to, {"generation": 1 if to in f1 else 2, "first": lo, "seconds": 0})
        c["first"] = min(c["first"], lo)
        c["seconds"] += hi - lo
    return contacts, sorted(all_edges)
