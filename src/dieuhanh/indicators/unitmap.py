"""Where a stored figure counts on the map being asked: the asked units whose subtree holds it.

A figure stored on the other map is first carried onto this map's units through the succession:
2021 → 2025 by the conversion weights (a merge whole, a divided commune by area), 2025 → 2021 by the
same weights normalised over the new unit's predecessors, so that totals are conserved both ways.
An old district, which the conversion data does not name, is carried through its communes in equal
shares. The nation is the same place on every map.
"""

from __future__ import annotations

import operator
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Generic, TypeVar

from django.db import router
from django.db.models import Count, Max

from dieuhanh.indicators import versions
from dieuhanh.units.models import MAP_KINDS, Succession, Unit

Place = tuple[int, float, bool]  # (unit id on the asked map, weight, carried from the other map)


@dataclass(frozen=True)
class UnitIndex:
    """Every unit's map and path, and the succession both ways; built once per process and reused
    until the units change (a `units load`), because analytics needs it on every request."""

    edition: dict[int, str]
    path: dict[int, str]
    by_path: dict[tuple[str, str], int]
    forward: dict[int, list[tuple[int, float]]]  # old unit → [(new unit, weight)]
    backward: dict[int, list[tuple[int, float]]]  # new unit → [(old unit, normalised weight)]
    leaves: dict[int, list[int]]  # a unit without succession rows → its leaf units

    @cached_property
    def by_area(self) -> dict[str, list[int]]:
        """Every unit by its area (versions.area_of: its province), for the leaves of a write's areas."""
        out: dict[str, list[int]] = defaultdict(list)
        for pk, path in self.path.items():
            out[versions.area_of(path)].append(pk)
        return dict(out)

    @classmethod
    def build(cls) -> UnitIndex:
        edition, path, by_path = {}, {}, {}
        children: dict[int | None, list[int]] = defaultdict(list)
        for pk, ed, p, parent, kind in Unit.objects.values_list(
            "id", "edition_id", "path", "parent_id", "kind"
        ):
            edition[pk], path[pk] = ed, p
            by_path[(ed, p)] = pk
            if kind in MAP_KINDS:  # an enterprise below a commune leaves the commune a leaf of its map
                children[parent].append(pk)
        forward: dict[int, list[tuple[int, float]]] = defaultdict(list)
        into: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for old, new, weight in Succession.objects.values_list("old_id", "new_id", "weight"):
            forward[old].append((new, weight))
            into[new].append((old, weight))
        backward = {
            new: [(old, w / sum(x for _, x in olds)) for old, w in olds] for new, olds in into.items()
        }
        return cls(edition, path, by_path, dict(forward), backward, _leaves(children))


def _leaves(children: dict[int | None, list[int]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}

    def walk(pk: int) -> list[int]:
        if pk not in out:
            kids = children.get(pk, [])
            out[pk] = [leaf for kid in kids for leaf in walk(kid)] if kids else [pk]
        return out[pk]

    for root in children.get(None, []):
        walk(root)
    return out


_lock = threading.Lock()
_cached: tuple[tuple, UnitIndex] | None = None
T = TypeVar("T")


class KeptPerIndex(Generic[T]):
    """Values made from the units as the current unit index holds them, kept per key (the `size` last
    used) while that index is current: a rename, a new unit or a new succession makes a new index
    (`unit_index`), and the values are made anew with it. The values are shared between requests:
    read them, do not change them."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._kept: OrderedDict[tuple, tuple[UnitIndex, T]] = OrderedDict()
        _KEPT.append(self)

    def get(self, key: tuple, make: Callable[[UnitIndex], T]) -> T:
        index = unit_index()
        with _lock:
            found = self._kept.get(key)
            if found is not None and found[0] is index:
                self._kept.move_to_end(key)
                return found[1]
        made = make(index)
        with _lock:
            self._kept[key] = (index, made)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return made

    def clear(self) -> None:
        with _lock:
            self._kept.clear()


_KEPT: list[KeptPerIndex] = []  # every one, for forget()


def unit_index() -> UnitIndex:
    global _cached
    alias = router.db_for_read(Unit)
    # The units' data version (one small read) where it may be trusted; else their counts.
    found = None if versions.in_transaction(alias) else versions.current(frozenset({"units"}), alias)
    version = (
        ("units", *found)
        if found is not None
        else (
            tuple(Unit.objects.aggregate(n=Count("id"), top=Max("id")).values()),
            tuple(Succession.objects.aggregate(n=Count("id"), top=Max("id")).values()),
        )
    )
    with _lock:
        if _cached is None or _cached[0] != version:
            _cached = (version, UnitIndex.build())
        return _cached[1]


class UnitMap:
    """The asked units (all of one map) and how any stored unit's figure reaches them."""

    @classmethod
    def of(cls, asked: list[Unit]) -> UnitMap:
        """The map of these asked units, kept while the units are unchanged: the same question asked again
        finds its leaves' places already worked out (a national question has some 14,000 leaves)."""
        return _MAPS.get(tuple(ids_of(asked)), lambda index: cls(asked, index))

    def __init__(self, asked: Iterable[Unit], index: UnitIndex | None = None) -> None:
        self.asked = list(asked)
        # Made once, not at every ask: a national map's 3,321 units (shared: not to be changed).
        self.asked_ids = ids_of(self.asked)
        self.index = index or unit_index()
        self.edition = self.asked[0].edition_id if self.asked else "VN-2025"
        self.asked_by_path = {u.path: u.pk for u in self.asked}
        self._targets: dict[int, list[Place]] = {}
        self._leaf_places: tuple[list[int], list[int], list[float]] | None = None
        self._literals: tuple[str, str, str] | None = None

    def places(self, unit_id: int) -> list[Place]:
        """The unit's figure on this map: itself, or its successors by weight."""
        index = self.index
        if index.edition.get(unit_id) == self.edition:
            return [(unit_id, 1.0, False)]
        path = index.path.get(unit_id)
        if path is None:
            return []
        if path.count("/") == 2:  # the nation
            nation = index.by_path.get((self.edition, path))
            return [(nation, 1.0, True)] if nation is not None else []
        return [(pk, w, True) for pk, w in self._carry(unit_id)]

    def _carry(self, unit_id: int) -> list[tuple[int, float]]:
        links = self.index.forward.get(unit_id) or self.index.backward.get(unit_id)
        if links:
            return links
        leaves = [leaf for leaf in self.index.leaves.get(unit_id, []) if leaf != unit_id]
        shares: dict[int, float] = defaultdict(float)
        for leaf in leaves:
            for pk, w in self._carry(leaf):
                shares[pk] += w / len(leaves)
        return list(shares.items())

    def containing(self, unit_id: int) -> list[int]:
        """The asked units whose subtree holds this unit of this map (itself included)."""
        path = self.index.path[unit_id]
        out, end = [], 0
        while (end := path.find("/", end + 1)) != -1:
            asked = self.asked_by_path.get(path[: end + 1])
            if asked is not None:
                out.append(asked)
        return out

    def targets(self, unit_id: int) -> list[Place]:
        """Asked units a leaf's counts go to, with weight and whether carried (memoised per unit)."""
        found = self._targets.get(unit_id)
        if found is None:
            found = [
                (asked, weight, carried)
                for place, weight, carried in self.places(unit_id)
                for asked in self.containing(place)
            ]
            self._targets[unit_id] = found
        return found

    def leaf_places(self) -> tuple[list[int], list[int], list[float]]:
        """Every leaf of either map that counts in an asked unit, as three columns (leaf id, the asked
        unit's id, weight) that a database can join its rollups to: worked out once per map of asked
        units (UnitMap.of keeps it), some 14,000 leaves for a national one."""
        if self._leaf_places is None:
            leaves, asked, weights = [], [], []
            for pk, found in self.index.leaves.items():
                if found == [pk]:
                    for target, weight, _ in self.targets(pk):
                        leaves.append(pk)
                        asked.append(target)
                        weights.append(weight)
            self._leaf_places = (leaves, asked, weights)
        return self._leaf_places

    def leaf_places_literals(self) -> tuple[str, str, str]:
        """leaf_places() as PostgreSQL array literals, written once per map of asked units: the driver
        would convert 14,000 numbers three times over for every question (a third of a wall's render)."""
        if self._literals is None:
            leaves, asked, weights = ("{" + ",".join(map(repr, c)) + "}" for c in self.leaf_places())
            self._literals = (leaves, asked, weights)
        return self._literals

    def is_carried(self, unit_id: int) -> bool:
        return self.index.edition.get(unit_id) != self.edition

    def shares(self, stored: Iterable[int]) -> dict[int, list[tuple[int, float]]]:
        """Asked unit → [(stored unit, the share of its value that falls in the asked unit's subtree)],
        a stored unit left out where a unit above it on its own map has a value (it stands for it)."""
        under: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        for unit_id in stored:
            for place, weight, _ in self.places(unit_id):
                for asked in self.containing(place):
                    under[asked][unit_id] += weight
        key = self._map_path
        out = {}
        for asked, found in under.items():
            nations = sorted((u for u in found if key(u)[1].count("/") == 2), key=self.is_carried)
            if nations:  # the nation is one place on every map: its own figure, this map's first
                out[asked] = [(nations[0], found[nations[0]])]
                continue
            kept: list[int] = []
            for unit_id in sorted(found, key=key):
                if not kept or not _below(key(unit_id), key(kept[-1])):
                    kept.append(unit_id)
            out[asked] = [(u, found[u]) for u in kept]
        return out

    def _map_path(self, unit_id: int) -> tuple[str, str]:
        return (self.index.edition[unit_id], self.index.path[unit_id])


def _below(unit: tuple[str, str], other: tuple[str, str]) -> bool:
    """True when `unit` lies in `other`'s subtree on the same map."""
    return unit[0] == other[0] and unit[1].startswith(other[1])


def forget() -> None:
    """Drop the kept index and maps (the tests' rollback brings version numbers back)."""
    global _cached
    with _lock:
        _cached = None
    for kept in _KEPT:
        kept.clear()


_MAPS: KeptPerIndex[UnitMap] = KeptPerIndex()  # UnitMap.of's


def ids_of(units: Iterable[Unit]) -> list[int]:
    """The units' ids, a list at a time without Model.pk's look-up of its field per unit: a national
    question's 3,321 units at every ask."""
    return list(map(_ID, units))


_ID = operator.attrgetter("id")
