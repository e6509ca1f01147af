"""Analytics: indicators × periods × units, computed from the stored data at the moment of asking.

DHIS2 answers from tables rebuilt overnight; here every answer reads the data values and the
warehouse's monthly rollups as they are, so a figure entered or ingested a moment ago is in it. The
work per request is a fixed number of queries (one per referenced data element or event kind, over
every period and unit asked), then plain Python over the rows:

1. rows of either map are placed on the asked map: a unit of the same map stands for itself; a unit
   of the other map is carried through the succession (merges whole, divided units by weight), the
   nation to the nation;
2. per unit where values are stored, a period is its own stored value or else the combination of the
   stored values of the element's period type inside it (sum, average or last value);
3. per asked unit, the stored units in its subtree combine (sum; average for averages), a unit with
   its own value standing for its subtree (so a province's reported total is not added to its
   communes' values);
4. the formula is evaluated per cell, with its period and unit shifts (cùng kỳ, year-to-date, parent).
"""

from __future__ import annotations

import logging
import math
import operator
import threading
import time
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from itertools import chain, repeat
from typing import Any, NamedTuple, Protocol

import msgspec
import numpy as np
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, router, transaction
from django.db.models import FloatField, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.utils.translation import gettext_lazy as _

from dieuhanh.errors import DomainError, lazy_format
from dieuhanh.indicators import formula as f
from dieuhanh.indicators import versions
from dieuhanh.indicators.approval.services import approved_filter
from dieuhanh.indicators.models import DataElement, DataValue, Indicator, MonthPack, Target
from dieuhanh.indicators.periods import Period, parse
from dieuhanh.indicators.unitmap import UnitMap, ids_of
from dieuhanh.memory import no_cycle_collection
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area
from dieuhanh.warehouse.enterprises import figures as enterprise_figures
from dieuhanh.warehouse.kinds import KINDS
from dieuhanh.warehouse.models import Rollup, RollupMonth

log = logging.getLogger(__name__)
MONTH_ALIGNED = {"monthly", "quarterly", "sixmonthly", "yearly", "ytd"}


class AnalyticsError(DomainError):
    """A request that cannot be answered as asked; `field` names the parameter at fault."""

    @property
    def param(self) -> str | None:
        return self.field


class Cell(NamedTuple):
    value: float
    estimate: bool = False
    carried: bool = False


def as_cell(found: Cell | float | None) -> Cell | None:
    return Cell(found) if isinstance(found, float) else found


@dataclass(frozen=True)
class Dimension:
    """What is asked for: an indicator (its formula) or a data element or event count (a reference)."""

    code: str
    name: str
    unit: str
    decimals: int
    tree: f.Node
    indicator: Indicator | None


# Resolving what is asked


def dimension(code: str, indicators: dict[str, Indicator] | None = None) -> Dimension:
    """The indicator, data element (with .option) or event count (ev.kind[.dim…]) named by `code`."""
    code = code.strip().lower()
    indicator = (indicators or {}).get(code) or Indicator.objects.filter(code=code).first()
    if indicator is not None:
        tree = inline(f.parse(indicator.formula), (code,))
        return Dimension(code, indicator.name, indicator.unit, indicator.decimals, tree, indicator)
    source = reference(code)
    if isinstance(source, EventRef):
        return Dimension(code, source.label, "lượt", 0, f.Ref(code), None)
    if isinstance(source, ElementRef):
        name = source.element.name + (f" ({source.option})" if source.option else "")
        return Dimension(code, name, source.element.unit, 2, f.Ref(code), None)
    raise AnalyticsError("dx", _("no indicator, data element or event count '%(code)s'") % {"code": code})


def inline(tree: f.Node, seen: tuple[str, ...]) -> f.Node:
    """The tree with references to other indicators replaced by their formulas (cycles refused)."""
    if isinstance(tree, f.Ref):
        # A data element or event count is read as such, even where an indicator shares its code.
        other = None if reference(tree.name) else Indicator.objects.filter(code=tree.name).first()
        if other is None:
            return tree
        if other.code in seen:
            raise AnalyticsError(
                "dx",
                _("indicator formulas refer to each other in a loop: %(loop)s") % {"loop": " → ".join(seen)},
            )
        return inline(f.parse(other.formula), (*seen, other.code))
    if isinstance(tree, f.Unary):
        return f.Unary(tree.op, inline(tree.operand, seen), pos=tree.pos)
    if isinstance(tree, f.Binary):
        return f.Binary(tree.op, inline(tree.left, seen), inline(tree.right, seen), pos=tree.pos)
    if isinstance(tree, f.Call) and tree.name != "target":
        return f.Call(tree.name, tuple(inline(a, seen) for a in tree.args), pos=tree.pos)
    return tree


@dataclass(frozen=True)
class EventRef:
    kind: str
    dims: tuple[str, ...]

    @property
    def label(self) -> str:
        return " · ".join([KINDS[self.kind].label, *self.dims])


@dataclass(frozen=True)
class ElementRef:
    element: DataElement
    option: str


def reference(name: str) -> EventRef | ElementRef | None:
    """What a formula's #{name} reads; None when nothing has that name."""
    parts = name.split(".")
    if parts[0] == "ev":
        if len(parts) < 2 or parts[1] not in KINDS or len(parts) > 4:
            return None
        return EventRef(parts[1], tuple(parts[2:]))
    element = DataElement.objects.filter(code=parts[0]).first()
    if element is None or len(parts) > 2 or (len(parts) == 2 and parts[1] not in element.option_codes()):
        return None
    return ElementRef(element, parts[1] if len(parts) == 2 else "")


def check_formula(text: str) -> f.Node:
    """The parsed formula, or FormulaError naming the position of the first unknown reference."""
    tree = f.parse(text)
    for node in _ref_nodes(tree):
        if reference(node.name) is None and not Indicator.objects.filter(code=node.name).exists():
            raise f.FormulaError(lazy_format(_("unknown reference '#{%(name)s}'"), name=node.name), node.pos)
    return tree


def _ref_nodes(tree: f.Node) -> list[f.Ref]:
    if isinstance(tree, f.Ref):
        return [tree]
    if isinstance(tree, f.Unary):
        return _ref_nodes(tree.operand)
    if isinstance(tree, f.Binary):
        return _ref_nodes(tree.left) + _ref_nodes(tree.right)
    if isinstance(tree, f.Call):
        return [r for a in tree.args for r in _ref_nodes(a)]
    return []


# Which periods and units the formulas look at


SHIFTS = {"last_year": Period.last_year, "previous": Period.previous, "ytd": Period.ytd}


def needs(tree: f.Node, chain: tuple[str, ...] = ()) -> set[tuple[str, tuple[str, ...]]]:
    """(reference, shifts applied to the asked period and unit) for every reference of the tree."""
    if isinstance(tree, f.Ref):
        return {(tree.name, chain)}
    if isinstance(tree, f.Unary):
        return needs(tree.operand, chain)
    if isinstance(tree, f.Binary):
        return needs(tree.left, chain) | needs(tree.right, chain)
    if isinstance(tree, f.Call):
        out: set[tuple[str, tuple[str, ...]]] = set()
        for arg in tree.args:
            if tree.name == "yoy":
                out |= needs(arg, chain) | needs(arg, (*chain, "last_year"))
            elif tree.name == "share":
                out |= needs(arg, chain) | needs(arg, (*chain, "parent"))
            elif tree.name in SHIFTS:
                out |= needs(arg, (*chain, tree.name))
            elif tree.name != "target":
                out |= needs(arg, chain)
        return out
    return set()


def shifted(period: Period, chain: Iterable[str]) -> Period:
    for how in chain:
        if how in SHIFTS:
            period = SHIFTS[how](period)
    return period


def periods_read(period: Period, chains: Iterable[tuple[str, ...]], last_year: bool) -> set[Period]:
    """The periods a row of `period` reads: itself and (with `last_year`) cùng kỳ, each shifted as its
    formula's references are (needs()' chains). What compute() reads, and what a month patch remakes."""
    asked = (period, period.last_year()) if last_year else (period,)
    return {shifted(q, chain) for q in asked for chain in chains}


# Reading the stored data


# (asked unit id, period id) → cell; a warehouse count is a bare float (final, never carried as a
# value is), which saves building tens of thousands of cells per answer.
Cells = Mapping[tuple[int, str], Cell | float]
ValueCells = dict[tuple[int, str], Cell]  # the same for data values: always cells
# The area and month counters of an answer's kinds (versions.areas) and the database they were read
# from, before the data: the answer cache's, handed down to the reads that need them.
Counters = tuple[str, dict[str, int]]


def _fan_out(group_of_row: np.ndarray, per_group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row repeated once per item of its group, the items of every group lying one after another in
    a flat array: (the row of each repeat, the flat index of its item)."""
    if (per_group == 1).all():  # one item per group (each month in one asked month): nothing repeats
        return np.arange(len(group_of_row)), group_of_row
    fan = per_group[group_of_row]
    rows = np.repeat(np.arange(len(group_of_row)), fan)
    first = np.concatenate(([0], np.cumsum(per_group)[:-1]))[group_of_row]
    items = np.repeat(first - np.concatenate(([0], np.cumsum(fan)[:-1])), fan) + np.arange(len(rows))
    return rows, items


def _dense(ids: np.ndarray) -> bool:
    """Whether ids (not empty) are unit ids small and dense enough for an array indexed by id to stand
    for a sort: none negative, and the largest within a few times their number."""
    return bool(ids.min() >= 0 and ids.max() <= 8 * len(ids) + 100_000)


def _distinct(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(ids, return_inverse=True) without its sort where the ids are unit ids (small and
    dense): a national read has some 90,000 rows and only 3,000 to 14,000 distinct leaves."""
    if not _dense(ids):
        return np.unique(ids, return_inverse=True)
    top = int(ids.max())
    found = np.flatnonzero(np.bincount(ids, minlength=top + 1))
    index_of = np.zeros(top + 1, dtype=np.int64)
    index_of[found] = np.arange(len(found))
    return found, index_of[ids]


class Places(Protocol):
    def targets(self, unit_id: int) -> list[tuple[int, float, bool]]: ...


class _Spread:
    """A rollup read's buckets: each one's index, and the grid's indexes of the asked periods it counts in."""

    def __init__(self, buckets: dict[date, list[str]], periods: dict[str, int]) -> None:
        # The driver gives dates as dates (PostgreSQL) or text (SQLite): look up either form.
        self.bucket_of: dict[object, int] = {}
        self.firsts = list(buckets)  # each bucket's first day
        bucket_periods: list[list[int]] = []
        for day, pids in buckets.items():
            self.bucket_of[day] = self.bucket_of[day.isoformat()] = len(bucket_periods)
            bucket_periods.append([periods[pid] for pid in pids])
        self.per_bucket = np.array([len(p) for p in bucket_periods], dtype=np.int64)
        self.flat_periods = np.array([j for p in bucket_periods for j in p], dtype=np.int64)
        self.starts = np.cumsum(self.per_bucket) - self.per_bucket  # each bucket's first in flat_periods
        # Each bucket's first day as the packed read writes it (days since _PACKED_EPOCH), sorted, and
        # its index: a packed read's days are looked up a whole column at once.
        days = [(day - _PACKED_EPOCH).days for day in self.firsts]
        order = np.argsort(days, kind="stable")
        self.days = np.array(days, dtype=np.int64)[order]
        self.day_buckets = np.arange(len(days), dtype=np.int64)[order]

    def periods_of(self, b: int) -> list[int]:
        """The grid's indexes of the periods bucket b counts in."""
        start = int(self.starts[b])
        return self.flat_periods[start : start + int(self.per_bucket[b])].tolist()

    def of_days(self, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The bucket index of each day (since _PACKED_EPOCH), and which of them are buckets at all."""
        if not len(self.days):
            return np.zeros(len(days), dtype=np.int64), np.zeros(len(days), dtype=bool)
        at = np.minimum(np.searchsorted(self.days, days), len(self.days) - 1)
        return self.day_buckets[at], self.days[at] == days

    def arrays(self, fetched: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(leaf, bucket, count) rows as three arrays: leaf ids, bucket indexes, counts."""
        if not fetched:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
        leaves, whens, counts = zip(*fetched, strict=True)
        bucket_of = self.bucket_of
        return (
            np.array(leaves, dtype=np.int64),
            np.fromiter((bucket_of[w] for w in whens), dtype=np.int64, count=len(whens)),
            np.array(counts, dtype=np.float64),  # PostgreSQL sums bigints as numeric
        )


# A rollup row as the packed read writes it (int8send, big-endian): the leaf id and the bucket's day in
# one number (leaf × 2^20 + days since _PACKED_EPOCH), then the count. Two values per row and not
# three: the database's part of a national answer is a few function calls per row over 94,000 rows,
# and the bytes cross the wire as hex text (issue 18). A leaf id past 2^43 overflows bigint, which
# PostgreSQL refuses rather than wraps; buckets outside the 2^20 days from the epoch take the grouped
# read (_packable).
_PACKED_EPOCH = date(1900, 1, 1)
_DAY_BITS = 20
_PACKED_ROW = np.dtype([("key", ">i8"), ("n", ">i8")])
_PACKED = (
    "SELECT string_agg(int8send(r.leaf::int8 * 1048576 + (r.bucket - DATE '1900-01-01'))"  # 2^20, the epoch
    " || int8send(r.n::int8), ''::bytea) FROM ({inner}) AS r(leaf, bucket, n)"
)


def _packable(spread: _Spread) -> bool:
    """Whether every bucket's day fits the packed read's key."""
    return not len(spread.days) or (spread.days[0] >= 0 and spread.days[-1] < 1 << _DAY_BITS)


def packed_sql(rows: QuerySet, column: str) -> tuple[str, list]:
    """The statement of _read_rows on PostgreSQL, and its parameters (bench/analytics.py shows its plan)."""
    inner, params = rows.values_list("commune_id", column, "count").order_by().query.sql_with_params()
    # `inner` is the ORM's own compiled statement, its values passed as parameters.
    return _PACKED.format(inner=inner), list(params)


def _read_rows(rows: QuerySet, column: str, spread: _Spread) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(leaf, bucket, count) of the rollup rows of `rows` in the spread's buckets, as three arrays; a leaf
    and bucket may come more than once (one row per dimension combination: the grid adds them up).
    On PostgreSQL the rows come packed into one bytea that numpy reads as it is: a national answer reads
    some 60,000 rollup rows, and grouping them in the database, then making each group into a tuple of
    Python objects and those into arrays, was most of its time (issue 18, docs/decisions.md)."""
    if connections[rows.db].vendor != "postgresql" or not _packable(spread):
        return spread.arrays(_fetch(rows.values_list("commune_id", column).annotate(n=_SUM).order_by()))
    with _binary_cursor(rows.db) as cursor:
        cursor.execute(*packed_sql(rows, column))
        packed = cursor.fetchone()[0]
    found = np.frombuffer(packed or b"", dtype=_PACKED_ROW)
    key = found["key"].astype(np.int64)
    bucket, known = spread.of_days(key & ((1 << _DAY_BITS) - 1))
    leaf, count = key >> _DAY_BITS, found["n"].astype(np.float64)
    if not known.all():
        leaf, bucket, count = leaf[known], bucket[known], count[known]
    return leaf, bucket, count


def _binary_cursor(alias: str) -> Any:
    """A cursor of the connection's (its transaction, Django's execute wrappers and query log) whose
    results come in PostgreSQL's binary format: the packed read's 1.5 MB of bytea as bytes, not as hex
    text that the server encodes and the driver decodes (8 of a national read's 28 ms at 10 M events,
    issue 18). Its parameters are bound by the server, which binary results need."""
    import psycopg
    from psycopg.pq import Format

    connection = connections[alias]
    connection.close_if_health_check_failed()  # as Django's own cursor(): its checks, errors, wrappers
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        made = psycopg.Cursor(connection.connection)
        made.format = Format.BINARY
    raw: Any = made  # django-stubs types these as taking Django's wrapper; Django passes the driver's
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


class Chunk(NamedTuple):
    """Rollup rows of some buckets (KeptMonths.chunks): the buckets, and the rows as arrays."""

    buckets: list[int]
    leaf: np.ndarray
    bucket: np.ndarray
    counts: np.ndarray


# The monthly rollup rows of some months, one result row per month in the order asked: (month, whether
# they come from a pack, its rows packed as in _PACKED, the leaf id alone as the key). A national month's
# row (some 60 kB) leaves the server as soon as it is made, so the rows stream in (_month_rows) while the
# answer is made from the months already there; small months come a few at a time, as the server's send
# buffer fills.
_SUMMED = (
    "(SELECT string_agg(int8send(r.leaf::int8) || int8send(r.n::int8), ''::bytea)"
    " FROM ({inner}) AS r(leaf, n))"
)
_MONTHS = "SELECT m.month, false, {summed} FROM unnest(%s::date[]) AS m(month)"
# The same where a month's pack (indicators.MonthPack) another process made under the counters the
# caller read may answer: taken as it is, COALESCE summing the rows only where none does. OFFSET 0 keeps
# the look-up a nested loop over the unnest, one index probe per month in the asked order: flattened into
# the join, the planner may hash it, and the months would come matched first, the rest in hash order.
_SHARED_MONTHS = (
    "SELECT m.month, p.packed IS NOT NULL, COALESCE(p.packed, {summed})"
    " FROM unnest(%s::date[], %s::bigint[]) AS m(month, version)"
    " LEFT JOIN LATERAL (SELECT packed FROM {packs} WHERE kind = %s AND dims = %s AND month = m.month"
    " AND version = m.version AND emptied IS NOT DISTINCT FROM %s::bigint OFFSET 0) AS p ON true"
)
_MONTH_ROW = np.dtype([("leaf", ">i8"), ("n", ">i8")])
# A pack made anew replaces one made under older counters only (two processes may make the same month).
_SHARE = (
    "INSERT INTO {packs} (kind, dims, month, version, emptied, packed)"
    " SELECT %s, %s, u.month, u.version, %s::bigint, u.packed"
    " FROM unnest(%s::date[], %s::bigint[], %b::bytea[]) AS u(month, version, packed)"
    " ON CONFLICT (kind, dims, month) DO UPDATE SET version = excluded.version,"
    " emptied = excluded.emptied, packed = excluded.packed"
    " WHERE (coalesce(excluded.emptied, 0), excluded.version)"
    " > (coalesce({packs}.emptied, 0), {packs}.version)"
)


@dataclass
class SharedMonths:
    """The packs (indicators.MonthPack) a monthly read may take: its count's kind and dimensions, each
    asked month's counter and the emptied one, as read before the rows (None where a month was never
    written: no pack is made or taken under no counter). The read notes the months it took from packs
    and those it summed anew with rows, for `share` to make into packs once it has ended (a month
    without rows is one index probe to sum again, and would only grow the table)."""

    kind: str
    dims: str
    month_counters: dict[date, int | None]
    emptied: int | None
    taken: int = 0
    made: list[tuple[date, int, bytes]] = field(default_factory=list)

    @staticmethod
    def dims_of(dims: tuple[str, ...]) -> str:
        return msgspec.json.encode(list(dims)).decode()

    def share(self, alias: str) -> None:
        """Make the months summed anew into packs for every other process. On the primary only (a
        replica's are the primary's, replayed); a pack that cannot be written is only a lost saving."""
        if not self.made or alias != DEFAULT_DB_ALIAS or versions.in_transaction(alias):
            return
        made = sorted(self.made)  # by month: two writers lock the rows in one order
        self.made = []
        months, numbers, packed = (list(column) for column in zip(*made, strict=True))
        own = not connections[alias].in_atomic_block  # else a savepoint in a test case's transaction
        try:
            # Bound by the server (_binary_cursor), the packs sent as binary (%b): the driver would
            # otherwise escape 1.5 MB of them as text, which cost more than summing the months again.
            with transaction.atomic(using=alias), _binary_cursor(alias) as cursor:
                if own:  # a pack lost in a crash is made again: its commit need not wait for the disk
                    cursor.execute("SET LOCAL synchronous_commit TO off")
                cursor.execute(
                    _SHARE.format(packs=MonthPack._meta.db_table),
                    [self.kind, self.dims, self.emptied, months, numbers, packed],
                )
        except DatabaseError:
            log.warning("analytics: %d monthly packs of %s not shared", len(made), self.kind, exc_info=True)


def _joined(chunks: list[Chunk]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The chunks' rows as one (leaf, bucket, count)."""
    if not chunks:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    return (
        np.concatenate([c.leaf for c in chunks]),
        np.concatenate([c.bucket for c in chunks]),
        np.concatenate([c.counts for c in chunks]),
    )


def months_sql(counted: QuerySet, months: list[date], shared: SharedMonths | None = None) -> tuple[str, list]:
    """The statement of _month_rows, and its parameters (bench/analytics.py shows its plan)."""
    one_month = counted.filter(month=RawSQL("m.month", [])).values_list("commune_id", "count").order_by()
    inner, params = one_month.query.sql_with_params()
    # `inner` is the ORM's own compiled statement, its values passed as parameters.
    summed = _SUMMED.format(inner=inner)
    if shared is None:  # every month summed (the packs' table not even named)
        return _MONTHS.format(summed=summed), [*params, months]
    numbers = [shared.month_counters.get(m) for m in months]
    sql = _SHARED_MONTHS.format(summed=summed, packs=MonthPack._meta.db_table)
    return sql, [*params, months, numbers, shared.kind, shared.dims, shared.emptied]


def _streaming(*_: Any) -> None:
    raise RuntimeError(
        "analytics: a query on a connection whose monthly rollup rows are still being read"
        " (CountGrid.settle() first)"
    )


def _month_rows(
    counted: QuerySet, spread: _Spread, buckets: list[int], shared: SharedMonths | None = None
) -> Generator[Chunk]:
    """The counted rows of these monthly buckets, one chunk per bucket as PostgreSQL sends it, in the
    order asked: the answer's rows for the first months are made while the server sums the next ones
    (a national answer's read is 20 of its 50 ms, and making its 20,000 rows 11, issue 18); with
    `shared`, a month's pack is taken where one is current, and the months summed anew are noted in it.
    The connection is busy until the last chunk is taken: a query on it meanwhile raises (_streaming)
    rather than wait on the driver's lock for ever. Closed early (an error while the rows are made), it
    reads the statement to its end: the driver would cancel it, which aborts the caller's transaction."""
    alias = counted.db
    connection = connections[alias]
    sql, params = months_sql(counted, [spread.firsts[b] for b in buckets], shared)
    with _binary_cursor(alias) as cursor:
        rows = cursor.cursor.stream(sql, params, binary=True)  # the driver's: single-row mode
        connection.execute_wrappers.append(_streaming)
        started = time.monotonic()
        try:
            with connection.wrap_database_errors:
                try:
                    for month, from_pack, packed in rows:
                        if shared is not None:
                            if from_pack:
                                shared.taken += 1
                            elif packed and (number := shared.month_counters.get(month)) is not None:
                                shared.made.append((month, number, packed))
                        found = np.frombuffer(packed or b"", dtype=_MONTH_ROW)
                        b = spread.bucket_of[month]
                        leaf, count = found["leaf"].astype(np.int64), found["n"].astype(np.float64)
                        yield Chunk([b], leaf, np.full(len(found), b), count)
                except GeneratorExit:
                    for _ in rows:  # to the end: at most the rest of one read
                        pass
                    raise
                finally:
                    rows.close()  # a stream left open would hold the driver's lock
        finally:
            connection.execute_wrappers.remove(_streaming)
        if connection.queries_logged:  # as Django's debug cursor logs its statements
            ops: Any = connection.ops  # PostgreSQL's, which writes the values in
            shown = ops.compose_sql(sql, params)
            connection.queries_log.append({"sql": shown, "time": f"{time.monotonic() - started:.3f}"})


class Summed:
    """One rollup read summed into a grid, kept for its patches: the rows counted (kind and dimensions,
    any bucket), the bucket column, where the leaves go, and the rows as read (leaf, bucket index, count);
    `count_of`: the kind and dimensions of a monthly read, whose months a patch reads through
    KeptMonths (so that the next question finds them current)."""

    def __init__(
        self,
        rows: QuerySet | None,
        column: str,
        buckets: dict[date, list[str]],
        periods: dict[str, int],
        units: Places,
        spread: _Spread | None = None,
        count_of: tuple[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.rows, self.column, self.units, self.count_of = rows, column, units, count_of
        self.spread = spread or _Spread(buckets, periods)
        self.leaf = self.bucket = np.zeros(0, dtype=np.int64)
        self.count = np.zeros(0)


class _LeafPlaces:
    """Where leaves count on a grid (UnitMap.targets, as the grid's indexes and weights), flattened per
    leaf in the order of `ids`, and each leaf id's slot: a national read's 94,000 rows find their places
    a whole column at once. Looking up its 3,000 to 14,000 leaves one by one for every answer, and making
    their places into arrays, was a fifth of a national answer's Python (issue 18)."""

    def __init__(
        self,
        unit_ids: list[int],
        ids: np.ndarray,
        target: np.ndarray,
        weight: np.ndarray,
        per_leaf: np.ndarray,
    ) -> None:
        self.unit_ids, self.ids = unit_ids, ids
        self.target, self.weight, self.per_leaf = target, weight, per_leaf
        self.slots = np.full(int(ids.max()) + 1 if len(ids) else 0, -1, dtype=np.int64)
        self.slots[ids] = np.arange(len(ids))

    @classmethod
    def of(cls, units: Places, index_of: dict[int, int], unit_ids: list[int], ids: np.ndarray) -> _LeafPlaces:
        return cls(unit_ids, ids, *_places_of(units, index_of, ids))

    def extended(self, units: Places, index_of: dict[int, int], ids: np.ndarray) -> _LeafPlaces:
        """A table with these leaves (none of them this one's) after this one's. Only theirs are looked
        up: a process's first answer streams its months in, each bringing a few leaves the months before
        had not, and making the whole table again for each cost a new worker's first national answer
        some 160 ms. A new table, not this one changed: another thread may be reading this one."""
        target, weight, per_leaf = _places_of(units, index_of, ids)
        return _LeafPlaces(
            self.unit_ids,
            np.concatenate((self.ids, ids)),
            np.concatenate((self.target, target)),
            np.concatenate((self.weight, weight)),
            np.concatenate((self.per_leaf, per_leaf)),
        )

    def lacking(self, ids: np.ndarray) -> np.ndarray:
        """Those of these leaf ids (distinct, none negative) that have no slot here."""
        inside = ids < len(self.slots)
        known = np.zeros(len(ids), dtype=bool)
        known[inside] = self.slots[ids[inside]] >= 0
        return ids[~known]

    def slot_of(self, leaf: np.ndarray) -> np.ndarray | None:
        """Each leaf's slot; None if one has none."""
        if leaf.min() < 0 or leaf.max() >= len(self.slots):
            return None
        slot = self.slots[leaf]
        return None if (slot < 0).any() else slot


_LEAF_PLACES: weakref.WeakKeyDictionary[UnitMap, _LeafPlaces] = weakref.WeakKeyDictionary()


def _places_of(units: Places, index_of: dict[int, int], ids: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per leaf id, where it counts on a grid, flattened: the grid's indexes, the weights, and how many
    places each leaf has (the offsets)."""
    places = [units.targets(pk) for pk in ids.tolist()]
    return (
        np.array([index_of[a] for found in places for a, _, _ in found], dtype=np.int64),
        np.array([w for found in places for _, w, _ in found], dtype=np.float64),
        np.array([len(found) for found in places], dtype=np.int64),
    )


class CountGrid(Mapping[tuple[int, str], float]):
    """Counts of asked unit × asked period, dense: (unit id, period id) → count, for the cells that
    some rollup row reached (a cell no row reached is missing, not zero, as a value never entered).

    The grid keeps the rows it was summed from (`Summed`, per rollup read), so that a later write to a
    few areas or months is applied by taking those areas' or months' rows out and adding them as they
    are now (`patch`, `patch_months`).

    A read may be added as it comes (`add_chunks`): a period's cells are then summed when first asked
    for (`of_period`, `column`), from the chunks read so far, and anything else reads it to the end
    first (`settle`)."""

    def __init__(self, unit_ids: list[int], period_ids: list[str]) -> None:
        self.units = dict(zip(unit_ids, range(len(unit_ids)), strict=True))
        self.periods = {p: j for j, p in enumerate(period_ids)}
        self.unit_ids, self.period_ids = unit_ids, period_ids
        size = len(unit_ids) * len(period_ids)
        # The sum of each cell, and how many rollup rows reached it (a cell is missing while none does),
        # period by period: cell (unit i, period j) is j × units + i, so a period's column is one slice.
        self._sum, self._hits = np.zeros(size), np.zeros(size, dtype=np.int64)
        self._columns: dict[int, list[float | None]] = {}
        self.summed: list[Summed] = []
        self.patchable = True  # False once a part was summed elsewhere (the database, an enterprise's)
        self._pending: _Pending | None = None

    def add_rollups(
        self, fetched: list[tuple], buckets: dict[date, list[str]], units: Places, kept: Summed | None = None
    ) -> None:
        """Add (leaf unit id, bucket day or month, count) rows, each to every asked unit its leaf counts
        in (UnitMap.targets, by weight) and every asked period its bucket lies in; `kept`: the read they
        came from, which keeps them for a patch."""
        spread = kept.spread if kept is not None else _Spread(buckets, self.periods)
        self.add_arrays(*spread.arrays(fetched), units, kept or Summed(None, "", {}, {}, units, spread))

    def add_arrays(
        self, leaf: np.ndarray, bucket: np.ndarray, count: np.ndarray, units: Places, kept: Summed
    ) -> None:
        """add_rollups() of rows already as arrays (leaf ids, the kept read's bucket indexes, counts)."""
        self.settle()
        self._add(leaf, bucket, count, kept.spread, units, 1)
        kept.leaf, kept.bucket, kept.count = leaf, bucket, count

    def add_chunks(self, chunks: Generator[Chunk], units: Places, kept: Summed) -> None:
        """add_arrays() of a read that comes in chunks (KeptMonths.chunks), each summed when a period it
        counts in is first asked for; the read is not begun here. One such read at a time: the one
        before is read to the end first."""
        self.settle()
        needs: dict[int, set[int]] = defaultdict(set)  # period → the buckets that count in it
        for b in range(len(kept.spread.firsts)):
            for j in kept.spread.periods_of(b):
                needs[j].add(b)
        self._pending = _Pending(chunks, units, kept, needs)

    def settle(self, period: int | None = None) -> None:
        """Sum the chunks of a read added as it comes: to the end, or until this period's cells are."""
        pending = self._pending
        try:
            while pending is not None:
                if period is not None and not pending.needs.get(period, set()) - pending.loaded:
                    return
                chunk = next(pending.chunks, None)
                if chunk is None:
                    pending.kept.leaf, pending.kept.bucket, pending.kept.count = _joined(pending.parts)
                    self._pending = pending = None
                    return
                pending.parts.append(chunk)
                pending.loaded.update(chunk.buckets)
                self._add(chunk.leaf, chunk.bucket, chunk.counts, pending.kept.spread, pending.units, 1)
        except BaseException:
            self.abandon()  # the read failed or was cut short: the statement ended, this grid no answer's
            raise

    def abandon(self) -> None:
        """Stop a read added as it comes (its statement cancelled): the grid is no answer's any more."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.chunks.close()

    def _add(
        self,
        leaf: np.ndarray,
        bucket: np.ndarray,
        count: np.ndarray,
        spread: _Spread,
        units: Places,
        sign: int,
    ) -> np.ndarray:
        """Add (sign 1) or take out (sign -1) rows given as arrays; the indexes of the units they reach."""
        if not len(leaf):
            return np.zeros(0, dtype=np.int64)
        placed = self._placed(leaf, units)
        if placed is not None:
            table, leaf_of_row = placed
            target, weight, per_leaf = table.target, table.weight, table.per_leaf
        else:
            leaf_ids, leaf_of_row = _distinct(leaf)
            target, weight, per_leaf = _places_of(units, self.units, leaf_ids)
        # Rows × their leaf's places …
        rows, place = _fan_out(leaf_of_row, per_leaf)
        unit_index, value, row_bucket = target[place], count[rows] * weight[place], bucket[rows]
        width = len(self.unit_ids)
        if len(row_bucket) and row_bucket[0] == row_bucket[-1] and (row_bucket == row_bucket[0]).all():
            # One bucket's rows (a month streamed in): summed per unit once, added to its periods' columns
            # (a bincount over every cell of the grid per month cost more than the month's rows).
            sums = np.bincount(unit_index, weights=value * sign, minlength=width)
            hits = np.bincount(unit_index, minlength=width) * sign
            for j in spread.periods_of(int(row_bucket[0])):
                self._sum[j * width : (j + 1) * width] += sums
                self._hits[j * width : (j + 1) * width] += hits
        else:
            # … × their bucket's periods.
            rows, offset = _fan_out(row_bucket, spread.per_bucket)
            cell = spread.flat_periods[offset] * width + unit_index[rows]
            size = self._sum.size
            self._sum += np.bincount(cell, weights=value[rows] * sign, minlength=size)
            self._hits += np.bincount(cell, minlength=size) * sign
        self._columns.clear()
        return np.flatnonzero(np.bincount(unit_index, minlength=width))

    def _placed(self, leaf: np.ndarray, units: Places) -> tuple[_LeafPlaces, np.ndarray] | None:
        """The places of the leaves of a map of asked units on this grid, kept per map (UnitMap.of keeps
        the map while the units are unchanged) and made again with the leaves it lacks, and each row's
        slot in them; None for other places (rows already of asked units) and unusual ids."""
        if not isinstance(units, UnitMap):
            return None
        table = _LEAF_PLACES.get(units)
        if table is not None and table.unit_ids == self.unit_ids:
            slot = table.slot_of(leaf)
            if slot is not None:
                return table, slot
            found = _distinct(leaf)[0]  # sorted, and not empty (_add reads no empty rows)
            if found[0] < 0:
                return None
            new = table.lacking(found)
            if not _dense(np.concatenate((table.ids, new))):  # no slot per id
                return None
            table = table.extended(units, self.units, new)
        else:
            found = _distinct(leaf)[0]
            if not _dense(found):  # no slot per id
                return None
            table = _LeafPlaces.of(units, self.units, self.unit_ids, found)
        _LEAF_PLACES[units] = table
        slot = table.slot_of(leaf)
        return None if slot is None else (table, slot)

    def patch(self, leaves: list[int]) -> set[int]:
        """Bring the rows of these leaves up to date in every rollup read: theirs as summed before taken
        out, theirs as the rollups hold them now added. The ids of the units whose cells that reached."""
        self.settle()
        reached: set[int] = set()
        wanted = np.array(sorted(leaves), dtype=np.int64)
        for kept in self.summed:
            old = np.isin(kept.leaf, wanted)
            taken = self._add(kept.leaf[old], kept.bucket[old], kept.count[old], kept.spread, kept.units, -1)
            assert kept.rows is not None
            now = _leaves_rows(kept.rows, kept.column, leaves, kept.spread)
            leaf, bucket, count = kept.spread.arrays(now)
            added = self._add(leaf, bucket, count, kept.spread, kept.units, 1)
            kept.leaf = np.concatenate((kept.leaf[~old], leaf))
            kept.bucket = np.concatenate((kept.bucket[~old], bucket))
            kept.count = np.concatenate((kept.count[~old], count))
            reached.update(self.unit_ids[i] for i in np.union1d(taken, added).tolist())
        return reached

    def patch_months(self, months: set[date], counters: Counters | None = None) -> set[str]:
        """Bring the rows of these months (their first days) up to date in every rollup read, for every
        leaf: theirs as summed before taken out, theirs as the rollups hold them now added (one packed
        read of those buckets). The ids of the periods whose cells that reached."""
        self.settle()
        reached: list[np.ndarray] = []
        for kept in self.summed:
            spread = kept.spread
            moved = [b for b, first in enumerate(spread.firsts) if first.replace(day=1) in months]
            if not moved:
                continue
            old = np.isin(kept.bucket, moved)
            self._add(kept.leaf[old], kept.bucket[old], kept.count[old], spread, kept.units, -1)
            assert kept.rows is not None
            if kept.count_of is not None:
                chunks = ANSWERS.months.chunks(
                    kept.rows, *kept.count_of, spread, moved, counters, share=False
                )
                leaf, bucket, count = _joined(list(chunks))
            else:
                rows = kept.rows.filter(**{f"{kept.column}__in": [spread.firsts[b] for b in moved]})
                leaf, bucket, count = _read_rows(rows, kept.column, spread)
            self._add(leaf, bucket, count, spread, kept.units, 1)
            kept.leaf = np.concatenate((kept.leaf[~old], leaf))
            kept.bucket = np.concatenate((kept.bucket[~old], bucket))
            kept.count = np.concatenate((kept.count[~old], count))
            reached += [np.array(spread.periods_of(b), dtype=np.int64) for b in moved]
        return {self.period_ids[j] for j in np.unique(np.concatenate(reached)).tolist()} if reached else set()

    def add(self, unit_id: int, period_id: str, n: float) -> None:
        self.settle()
        cell = self.periods[period_id] * len(self.unit_ids) + self.units[unit_id]
        self._sum[cell] += n
        self._hits[cell] += 1
        self._columns.clear()

    def column(self, period_id: str) -> list[float | None] | None:
        """Every unit's count in the period (None where missing), in unit order; None for a period
        that was not read."""
        j = self.periods.get(period_id)
        if j is None:
            return None
        self.settle(j)
        found = self._columns.get(j)
        if found is None:
            at = slice(j * len(self.unit_ids), (j + 1) * len(self.unit_ids))
            sums, hits = self._sum[at].tolist(), self._hits[at].tolist()
            found = self._columns[j] = [v if h else None for v, h in zip(sums, hits, strict=True)]
        return found

    def of_period(self, period_id: str) -> np.ndarray | None:
        """Every unit's count in the period as an array in unit order, NaN where missing; None for a
        period that was not read."""
        j = self.periods.get(period_id)
        if j is None:
            return None
        self.settle(j)
        at = slice(j * len(self.unit_ids), (j + 1) * len(self.unit_ids))
        return np.where(self._hits[at] > 0, self._sum[at], np.nan)

    def get(self, key: tuple[int, str], default: Any = None) -> Any:
        unit, column = self.units.get(key[0]), self.column(key[1])
        if unit is None or column is None:
            return default
        found = column[unit]
        return default if found is None else found

    def __getitem__(self, key: tuple[int, str]) -> float:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __iter__(self) -> Iterator[tuple[int, str]]:
        self.settle()
        for period_id in self.period_ids:
            column = self.column(period_id) or []
            for unit_id, found in zip(self.unit_ids, column, strict=True):
                if found is not None:
                    yield (unit_id, period_id)

    def __len__(self) -> int:
        self.settle()
        return int(np.count_nonzero(self._hits))


@dataclass
class _Pending:
    """A read added to a grid as it comes (CountGrid.add_chunks): the chunks to come, where their leaves
    go, the read they come from, which buckets count in each period, and those summed so far."""

    chunks: Generator[Chunk]
    units: Places
    kept: Summed
    needs: dict[int, set[int]]
    loaded: set[int] = field(default_factory=set)
    parts: list[Chunk] = field(default_factory=list)


@dataclass
class Reader:
    """Reads the references' cells for the asked units (of one map) and periods, one query per reference."""

    units: UnitMap
    cache: dict[str, Cells] = field(default_factory=dict)
    approval: str | None = None  # DHIS2's approvalLevel: count only values approved at this kind or above
    counters: Counters | None = None  # compute()'s
    rank: dict[str, int] = field(default_factory=dict)  # period id → the first asked period that reads it

    def cells(self, ref: str, periods: set[Period]) -> Cells:
        if ref not in self.cache:
            source = reference(ref)
            if isinstance(source, EventRef):
                self.cache[ref] = self._events(source, periods)
            elif isinstance(source, ElementRef):
                self.cache[ref] = self._values(source, periods)
            else:
                self.cache[ref] = {}
        return self.cache[ref]

    def _events(self, ref: EventRef, periods: set[Period]) -> Cells:
        """Counts from the monthly rollups (months, quarters, years) or the daily ones (days, weeks),
        summed onto the asked units and periods with numpy: a national answer reads some 100,000 rollup
        cells, and a Python loop over them was half its time."""
        grid = CountGrid(self.units.asked_ids, [p.id for p in periods])
        by_month = [p for p in periods if p.type in MONTH_ALIGNED]
        by_day = [p for p in periods if p.type not in MONTH_ALIGNED]
        sources: list[tuple[Any, str, list[Period]]] = [
            (RollupMonth, "month", by_month),
            (Rollup, "day", by_day),
        ]
        for model, column, chosen in sources:
            if not chosen:
                continue
            buckets = _buckets(chosen, monthly=model is RollupMonth)
            counted = model.objects.filter(kind=ref.kind)
            for dim, value in zip(("dim1", "dim2"), ref.dims, strict=False):
                counted = counted.filter(**{dim: value})
            rows = counted.filter(**{f"{column}__in": list(buckets)})
            if all(u.level == 0 for u in self.units.asked):
                # Only the nation, the same place on every map: every leaf's count is in it whole (a
                # divided commune's shares add up to it), so the database sums by bucket alone.
                fetched = [
                    (nation.pk, when, n)
                    for when, n in _fetch(rows.values_list(column).annotate(n=Sum("count")).order_by())
                    for nation in self.units.asked
                ]
                grid.patchable = False
                if fetched:
                    grid.add_rollups(fetched, buckets, _ASKED_ITSELF)
                continue
            if len(self.units.asked) <= SUMMED_IN_DATABASE and connections[rows.db].vendor == "postgresql":
                # A few units asked (the nation's curve, a province's tiles): the database sums the
                # leaves onto them and sends a row per unit and bucket, not per leaf and bucket.
                fetched = _summed_onto_asked(rows, column, self.units)
                grid.patchable = False
                if fetched:
                    grid.add_rollups(fetched, buckets, _ASKED_ITSELF)
                continue
            monthly = (ref.kind, ref.dims) if model is RollupMonth else None
            kept = Summed(counted, column, buckets, grid.periods, self.units, count_of=monthly)
            grid.summed.append(kept)
            if model is RollupMonth:
                # The months in the order the answer's rows need them (compute()'s asked periods).
                last = len(self.rank)
                rank = {day: min(self.rank.get(pid, last) for pid in pids) for day, pids in buckets.items()}
                order = sorted(range(len(kept.spread.firsts)), key=lambda b: (rank[kept.spread.firsts[b]], b))
                chunks = ANSWERS.months.chunks(counted, ref.kind, ref.dims, kept.spread, order, self.counters)
                grid.add_chunks(chunks, self.units, kept)
            else:
                grid.add_arrays(*_read_rows(rows, column, kept.spread), self.units, kept)
        firms = _FIRMS.get(self.units)
        if firms is None:  # per map of asked units, kept with it (UnitMap.of)
            firms = _FIRMS[self.units] = [u for u in self.units.asked if enterprise_figures.is_enterprise(u)]
        if firms and periods:  # an enterprise's or park's count: its workers' and gates' (issue 21)
            grid.patchable = False
            days = _buckets(list(periods), monthly=False)
            found = enterprise_figures.cells(ref.kind, ref.dims, firms, min(days), max(days))
            for (unit_id, day), n in found.items():
                for pid in days.get(day, ()):
                    grid.add(unit_id, pid, n)
        return grid  # counts: final, of this map's units (see Cells)

    def _values(self, ref: ElementRef, periods: set[Period]) -> Cells:
        element = ref.element
        wanted = _stored_periods(periods, element.period_type)
        rows = DataValue.objects.filter(element=element, period__in=list(wanted))
        if ref.option:
            rows = rows.filter(option=ref.option)
        approved = approved_filter(element.pk, wanted, self.approval) if self.approval else None
        if approved is not None:
            found = rows.values_list("unit_id", "period", "value", "status", "unit__edition_id", "unit__path")
            kept = ((u, pid, v, st) for u, pid, v, st, ed, path in found if approved(ed, path, pid))
            stored = _by_unit(kept, element)
        else:
            stored = _by_unit(rows.values_list("unit_id", "period", "value", "status"), element)
        if element.aggregation == "last":
            # DHIS2's "last": each unit's latest value in the period, then summed over units.
            stored = _latest_per_unit(stored, periods, element)
            wanted = {p.id: p for p in periods}
        in_space = _in_space(stored, wanted, element, self.units)
        return {
            (asked, period.id): cell
            for period in periods
            for asked in self.units.asked_ids
            if (cell := _in_time(in_space, asked, period, element)) is not None
        }


SUMMED_IN_DATABASE = 64  # asked units up to which PostgreSQL sums the rollups onto them
# The enterprises and parks among each map's asked units (Reader._events), while the map is kept.
_FIRMS: weakref.WeakKeyDictionary[UnitMap, list[Unit]] = weakref.WeakKeyDictionary()


class _AskedItself:
    """Rows already of asked units (summed in the database): each counts in itself."""

    def targets(self, unit_id: int) -> list[tuple[int, float, bool]]:
        return [(unit_id, 1.0, False)]


_ASKED_ITSELF = _AskedItself()


_PLACES = (
    "JOIN unnest(%s::bigint[], %s::bigint[], %s::float8[]) AS m(leaf, asked, w)"
    " ON m.leaf = r.leaf GROUP BY 1, 2"
)


def _summed_onto_asked(rows: QuerySet, column: str, units: UnitMap) -> list[tuple]:
    """(asked unit id, bucket, count) for the rollup rows of `rows`, each leaf's count summed onto the
    asked units it counts in, by weight, in PostgreSQL: the leaves' places are joined as arrays."""
    if not units.leaf_places()[0]:
        return []
    leaves, asked, weights = units.leaf_places_literals()
    inner, params = rows.values_list("commune_id", column, "count").query.sql_with_params()
    # `inner` is the ORM's own compiled statement, its values passed as parameters.
    sql = f"SELECT m.asked, r.bucket, SUM(r.n * m.w) FROM ({inner}) AS r(leaf, bucket, n) {_PLACES}"  # noqa: S608
    with connections[rows.db].cursor() as cursor:
        cursor.execute(sql, [*params, leaves, asked, weights])
        return cursor.fetchall()


# A count's sum as a float: PostgreSQL sums bigints as numeric, which the driver makes into Decimals.
_SUM = Cast(Sum("count"), FloatField())


def _leaves_rows(counted: QuerySet, column: str, leaves: list[int], spread: _Spread) -> list[tuple]:
    """(leaf, bucket, count) of the counted rows in the spread's buckets, for these leaves only (a patch:
    a province's some hundreds of leaves). On PostgreSQL each leaf is looked up by the rollup's own key,
    whose first column is the leaf, over the range of the buckets (a plain `IN` of hundreds of ids is
    planned as a scan of every leaf's rows, and a list of months as one index descent per leaf and month);
    the buckets outside the asked ones are left out here. `OFFSET 0` keeps the lookup per leaf: without
    it PostgreSQL may join the leaves to a scan of the whole country's rows in the buckets (it expects
    some 28 rows per leaf where there are 6): at 10 M, for Hà Nội's 684 leaves, 94,000 rows hashed in
    66 ms against 11 ms (median of 30, load 3.8), most of a patched answer's time (issue 18)."""
    first, last = min(spread.firsts), max(spread.firsts)
    rows = counted.filter(**{f"{column}__gte": first, f"{column}__lte": last})
    if connections[rows.db].vendor != "postgresql":
        found = _fetch(
            rows.filter(commune_id__in=leaves).values_list("commune_id", column).annotate(n=_SUM).order_by()
        )
    else:
        inner, params = (
            rows.filter(commune_id=RawSQL("l.id", [])).values_list(column, "count").query.sql_with_params()
        )
        # `inner` is the ORM's own compiled statement, its values passed as parameters.
        sql = f"SELECT l.id, r.bucket, SUM(r.n)::float8 FROM unnest(%s::bigint[]) AS l(id) CROSS JOIN LATERAL ({inner} OFFSET 0) AS r(bucket, n) GROUP BY 1, 2"  # noqa: S608, E501
        with connections[rows.db].cursor() as cursor:
            cursor.execute(sql, ["{" + ",".join(map(str, leaves)) + "}", *params])
            found = cursor.fetchall()
    return [row for row in found if row[1] in spread.bucket_of]


def _fetch(query: QuerySet) -> list[tuple]:
    """The rows of a grouped query as the driver gives them: Django's per-value converters cost a
    quarter of a national answer, and these columns need none (_events reads dates in either form)."""
    sql, params = query.query.sql_with_params()
    with connections[query.db].cursor() as cursor:  # the router's choice: the replica for a room's read
        cursor.execute(sql, params)
        return cursor.fetchall()


def _buckets(periods: list[Period], *, monthly: bool) -> dict[date, list[str]]:
    """Rollup bucket (a month's first day, or a day) → the asked periods it counts in."""
    out: dict[date, list[str]] = defaultdict(list)
    for period in periods:
        for part in period.split("monthly") if monthly else period.split("daily"):
            out[part.start].append(period.id)
    return out


def _stored_periods(periods: set[Period], period_type: str) -> dict[str, Period]:
    """The periods a value may be stored at to count for the asked ones: each, and its parts."""
    out = {p.id: p for p in periods}
    for period in periods:
        out.update((part.id, part) for part in period.split(period_type))
    return out


def _by_unit(rows: Iterable[tuple], element: DataElement) -> dict[int, dict[str, Cell]]:
    """Stored unit → period id → its value, the options combined (summed; averaged for averages)."""
    parts: dict[tuple[int, str], list[tuple[float, bool]]] = defaultdict(list)
    for unit_id, pid, value, status in rows:
        parts[(unit_id, pid)].append((value, status == "estimate"))
    out: dict[int, dict[str, Cell]] = defaultdict(dict)
    for (unit_id, pid), values in parts.items():
        total = sum(v for v, _ in values)
        value = total / len(values) if element.aggregation == "average" else total
        out[unit_id][pid] = Cell(value, any(e for _, e in values))
    return out


def _latest_per_unit(
    stored: dict[int, dict[str, Cell]], periods: set[Period], element: DataElement
) -> dict[int, dict[str, Cell]]:
    flat = {(u, pid): cell for u, cells in stored.items() for pid, cell in cells.items()}
    out: dict[int, dict[str, Cell]] = defaultdict(dict)
    for unit_id in stored:
        for period in periods:
            if (cell := _in_time(flat, unit_id, period, element)) is not None:
                out[unit_id][period.id] = cell
    return out


def _in_space(
    stored: dict[int, dict[str, Cell]], periods: dict[str, Period], element: DataElement, units: UnitMap
) -> ValueCells:
    """Per asked unit and stored period: the values stored in its subtree, of either map, combined;
    a unit with its own value stands for the units below it on its own map."""
    out: ValueCells = {}
    average = element.aggregation == "average"
    for pid in periods:
        found = {u: cells[pid] for u, cells in stored.items() if pid in cells}
        for asked, shares in units.shares(found).items():
            if element.aggregation == "none":
                shares = [(u, w) for u, w in shares if u == asked]
            if not shares:
                continue
            total = sum(found[u].value * w for u, w in shares)
            weight = sum(w for _, w in shares)
            estimate = any(found[u].estimate for u, _ in shares)
            carried = any(units.is_carried(u) for u, _ in shares)
            out[(asked, pid)] = Cell(total / weight if average else total, estimate, carried)
    return out


def _in_time(cells: ValueCells, asked: int, period: Period, element: DataElement) -> Cell | None:
    """The asked unit's value for the period: as stored for it, or its parts' (sum, average or last)."""
    own = cells.get((asked, period.id))
    if own is not None or element.aggregation == "none":
        return own
    parts = [c for p in period.split(element.period_type) if (c := cells.get((asked, p.id))) is not None]
    if not parts:
        return None
    if element.aggregation == "last":
        return parts[-1]
    total = sum(c.value for c in parts)
    return Cell(
        total / len(parts) if element.aggregation == "average" else total,
        any(c.estimate for c in parts),
        any(c.carried for c in parts),
    )


# Targets


def targets(codes: Iterable[str], unit_ids: Iterable[int], periods: Iterable[Period]) -> dict[tuple, float]:
    """(indicator code, unit id, period id) → target; a period without one takes its year's."""
    periods = list(periods)
    wanted = {p.id for p in periods} | {str(p.start.year) for p in periods}
    # Targets are few: the units are matched here rather than in a query with thousands of ids.
    rows = Target.objects.filter(indicator__code__in=list(codes), period__in=wanted)
    units = set(unit_ids)
    return {
        (code, unit_id, period): value
        for code, unit_id, period, value in rows.values_list("indicator__code", "unit_id", "period", "value")
        if unit_id in units
    }


def target_of(found: dict[tuple, float], code: str, unit_id: int, period: Period) -> float | None:
    exact = found.get((code, unit_id, period.id))
    return exact if exact is not None else found.get((code, unit_id, str(period.start.year)))


def periods_of(text: str) -> list[Period]:
    """'202108;2021YTD08' → periods; AnalyticsError naming the bad one."""
    out = []
    for pid in filter(None, (p.strip() for p in text.split(";"))):
        try:
            out.append(parse(pid))
        except ValueError as exc:
            raise AnalyticsError("pe", str(exc)) from None
    if not out:
        raise AnalyticsError("pe", _("name at least one period, e.g. 202108;2021YTD08"))
    return out


def units_asked(units: list[Unit]) -> list[Unit]:
    if len({u.edition_id for u in units}) > 1:
        raise AnalyticsError("ou", _("all units of one question are on one map; choose it with edition="))
    return units


# Answering


@dataclass
class Track:
    """What the values read for one cell were: any estimate, any carried across maps."""

    estimate: bool = False
    carried: bool = False


@dataclass
class CellEnv:
    """formula.Env over the cells read: one asked unit and period."""

    answer: Answer
    unit_id: int
    period: Period
    track: Track

    def value(self, ref: str) -> float | None:
        cell = as_cell(self.answer.cells.get(ref, {}).get((self.unit_id, self.period.id)))
        if cell is None:
            return None
        self.track.estimate |= cell.estimate
        self.track.carried |= cell.carried
        return cell.value

    def shifted(self, how: str) -> CellEnv | None:
        if how == "parent":
            parent = self.answer.parents.get(self.unit_id)
            return None if parent is None else CellEnv(self.answer, parent, self.period, self.track)
        return CellEnv(self.answer, self.unit_id, SHIFTS[how](self.period), self.track)

    def target(self, ref: str) -> float | None:
        return target_of(self.answer.targets, ref, self.unit_id, self.period)


@dataclass
class Answer:
    cells: dict[str, Cells]
    targets: dict[tuple, float]
    parents: dict[int, int]
    units: UnitMap | None = None  # where the counts' leaves went (for a patch)


def target_refs(tree: f.Node) -> set[str]:
    if isinstance(tree, f.Call) and tree.name == "target":
        return f.refs(tree)
    if isinstance(tree, f.Unary):
        return target_refs(tree.operand)
    if isinstance(tree, f.Binary):
        return target_refs(tree.left) | target_refs(tree.right)
    if isinstance(tree, f.Call):
        return set().union(*(target_refs(a) for a in tree.args))
    return set()


def compute(
    dims: list[Dimension],
    periods: list[Period],
    units: list[Unit],
    area: Area | None = None,
    approval: str | None = None,
    last_year: bool = True,
    counters: Counters | None = None,
    streamed: bool = False,
) -> Answer:
    """Read every cell the dimensions' formulas need for these periods (and cùng kỳ, unless
    `last_year` is False) and units; `counters`: the area and month counters the answer cache read
    before (KeptMonths takes them rather than reading them again). With `streamed`, one count's
    monthly rollup rows may still be coming (CountGrid.add_chunks): the caller makes its rows from
    them as they come, asks nothing else of the database meanwhile, and settles them (Computed)."""
    asked = set(periods) | ({p.last_year() for p in periods} if last_year else set())
    wanted: dict[str, set[Period]] = defaultdict(set)
    rank: dict[str, int] = {}
    uses_parent = False
    for dim in dims:
        for ref, shifts in needs(dim.tree):
            uses_parent |= "parent" in shifts
            for i, period in enumerate(periods):
                read = periods_read(period, [shifts], last_year)
                wanted[ref] |= read
                for q in read:
                    rank[q.id] = min(rank.get(q.id, i), i)
    parents = _parents(units, area) if uses_parent else {}
    extra = Unit.objects.filter(pk__in=set(parents.values()) - {u.pk for u in units}) if parents else []
    reader = Reader(UnitMap.of([*units, *extra]), approval=approval, counters=counters, rank=rank)
    cells = {ref: reader.cells(ref, chosen) for ref, chosen in wanted.items()}
    codes = {d.code for d in dims}.union(*(target_refs(d.tree) for d in dims))
    found = Answer(cells, targets(codes, ids_of(units), asked), parents, reader.units)
    # The reads still to come start one after another, each when first asked: all but the last read
    # now (two statements cannot stream on one connection at once), the last too unless `streamed`.
    # A read not begun holds nothing, and settle() ends its own on an error.
    grids = [c for c in cells.values() if isinstance(c, CountGrid)]
    for grid in grids if not streamed else grids[:-1]:
        grid.settle()
    return found


def _parents(units: list[Unit], area: Area | None) -> dict[int, int]:
    """Each unit's parent, where the caller may see it: share() must not reveal a total outside the area."""
    found = {u.parent_id for u in units if u.parent_id}
    visible = set(Unit.objects.filter(pk__in=found).within(area).values_list("pk", flat=True))
    return {u.pk: u.parent_id for u in units if u.parent_id is not None and u.parent_id in visible}


def rows(
    dims: list[Dimension],
    periods: list[Period],
    units: list[Unit],
    *,
    area: Area | None = None,
    language: str = "vi",
    empty: bool = False,
    approval: str | None = None,
    last_year: bool = True,
) -> list[dict]:
    """One row per dimension × period × unit that has a value (every one with empty=True); `area`
    is the caller's, for the units a formula looks at beyond those asked (share's parent); with
    `approval` (a kind), only values approved at that level or above are counted. With
    last_year=False cùng kỳ is not read (half the work: the room's daily epidemic curve), and rows
    say None for it unless a formula itself reads the year before.

    The rows are shared with later callers of the same question (the answer cache): read them, do not
    change them."""
    return list(_answered(dims, periods, units, area, language, empty, approval, last_year).rows)


def rows_json(
    dims: list[Dimension],
    periods: list[Period],
    units: list[Unit],
    *,
    area: Area | None = None,
    language: str = "vi",
    empty: bool = False,
    approval: str | None = None,
) -> list[bytes]:
    """rows() as a JSON array in pieces (Answered.json_parts), to be joined as they are: kept with the
    answer, and after a patch encoded again only where it changed (the API's body: 8 MB nationally)."""
    return _answered(dims, periods, units, area, language, empty, approval, True).json_parts()


def _answered(
    dims: list[Dimension],
    periods: list[Period],
    units: list[Unit],
    area: Area | None,
    language: str,
    empty: bool,
    approval: str | None,
    last_year: bool,
) -> Answered:
    key = (
        tuple((d.code, d.name, d.unit, d.decimals, repr(d.tree)) for d in dims),
        tuple(p.id for p in periods),
        tuple(ids_of(units)),  # the id, not pk, a column at a time: 3,321 units at every ask
        None if area is None else (area.everything, tuple(sorted(area.prefixes))),
        language, empty, approval, last_year,
    )  # fmt: skip
    with no_cycle_collection():  # tens of thousands of cells and rows, none in a cycle
        return ANSWERS.answer(
            key,
            _sources(dims),
            _kinds(dims),
            lambda counters: Computed(
                compute(dims, periods, units, area, approval, last_year, counters, streamed=True),
                dims,
                periods,
                units,
                language,
                empty,
                last_year,
            ),
        )


# Asked units per block of an answer's JSON (Answered): a patch after one province's write changes
# some hundred communes, lying together in the asked order, so a few blocks in each dimension × period.
JSON_BLOCK = 64


class Answered:
    """One answer's rows, and their JSON when asked for (then kept with them).

    The JSON is kept in blocks of JSON_BLOCK asked units in each dimension × period (the answer's
    `segments`, Computed's), each block's rows encoded on their own: joined with commas inside
    brackets (`json_parts`) they are msgspec.json.encode(rows) exactly. An answer patched after a
    write takes the blocks of the answer it brought up to date (`before`) and encodes again only
    those the patch changed (`changed`: block k of segment s is s × blocks per segment + k; a patch
    of a few areas changes the blocks of their units in every segment, one of a month every block of
    the periods that read it). Encoding a national answer's
    35,000 rows (8.6 MB) again after each write cost the API more than the patch itself, and joining
    the pieces once into the response saves copying the 8.6 MB (issue 18, docs/decisions.md)."""

    __slots__ = ("_base", "_blocks", "_parts", "rows", "segments")

    def __init__(
        self,
        found: list[dict],
        segments: list[list[dict | None]],
        before: Answered | None = None,
        changed: Iterable[int] = (),
    ) -> None:
        self.rows, self.segments = found, segments
        self._blocks: list[bytes] | None = None
        self._parts: list[bytes] | None = None
        # What the blocks are made from: an answer whose blocks are made, and the blocks changed since.
        # One attribute, read and cut at once: another thread may be making the JSON meanwhile.
        self._base: tuple[Answered, frozenset[int]] | None = None
        if before is None:
            return
        if before._blocks is not None:
            self._base = (before, frozenset(changed))
        elif (earlier := before._base) is not None:  # its JSON not made: what it would be made from
            self._base = (earlier[0], earlier[1].union(changed))

    def json_parts(self) -> list[bytes]:
        """The rows' JSON array in pieces, to be joined as they are (into a response's body)."""
        if self._parts is None:
            self._blocks = blocks = self._encoded()
            self._base = None  # no longer needed
            parts = [b"["]
            for block in blocks:
                if block:
                    if len(parts) > 1:
                        parts.append(b",")
                    parts.append(block)
            parts.append(b"]")
            self._parts = parts
        return self._parts

    def _encoded(self) -> list[bytes]:
        """Each block's rows as JSON without the brackets (b"" where none is shown), segment by segment."""
        per_segment = _blocks_per_segment(len(self.segments[0])) if self.segments else 0
        base = self._base
        kept = None if base is None else base[0]._blocks
        if base is None or kept is None:
            return [_block(segment, k) for segment in self.segments for k in range(per_segment)]
        blocks = list(kept)
        for b in base[1]:
            s, k = divmod(b, per_segment)
            blocks[b] = _block(self.segments[s], k)
        return blocks


def _blocks_per_segment(asked: int) -> int:
    return -(-asked // JSON_BLOCK)


def _block(segment: list[dict | None], k: int) -> bytes:
    shown = [row for row in segment[k * JSON_BLOCK : (k + 1) * JSON_BLOCK] if row is not None]
    return msgspec.json.encode(shown)[1:-1] if shown else b""


def _sources(dims: list[Dimension]) -> frozenset[str]:
    """The data-version sources (indicators.versions) an answer over these dimensions reads."""
    out = {"units", "targets"}
    for dim in dims:
        for name in f.refs(dim.tree):
            out |= {"events", "firms"} if name.startswith("ev.") else {"values", "catalog"}
    return frozenset(out)


def _kinds(dims: list[Dimension]) -> frozenset[str]:
    """The event kinds an answer over these dimensions counts (their areas' versions, indicators.versions)."""
    return frozenset(
        name.split(".")[1]
        for dim in dims
        for name in f.refs(dim.tree)
        if name.startswith("ev.") and "." in name
    )


# The areas of each map of asked units (Computed.areas), while the map is kept (UnitMap.of).
_MAP_AREAS: weakref.WeakKeyDictionary[UnitMap, frozenset[str]] = weakref.WeakKeyDictionary()
# Each map's asked units as (id, reference, name), as the rows show them, while the map is kept.
_ASKED_ROWS: weakref.WeakKeyDictionary[UnitMap, list[tuple[int, str, str]]] = weakref.WeakKeyDictionary()


def _asked_rows(units: list[Unit], kept: UnitMap | None) -> list[tuple[int, str, str]]:
    """(id, reference, name) of the asked units: taken from the map they were read with, whose asked
    units begin with them (compute() adds only the parents a formula needs after them), and which is
    kept while the units are unchanged (a rename makes a new one). A national answer's 3,321 units
    each read their reference anew cost a tenth of making its rows."""
    found = None if kept is None else _ASKED_ROWS.get(kept)
    if found is None and kept is not None:
        found = _ASKED_ROWS[kept] = [(u.pk, u.ref, u.name) for u in kept.asked]
    if found is None or [row[0] for row in found[: len(units)]] != ids_of(units):
        return [(u.pk, u.ref, u.name) for u in units]
    return found[: len(units)]


class Computed:
    """One answer: what was read (`Answer`), and its rows laid out per dimension × period in the asked
    units' order (None where a cell is left out), so that a patch rewrites only the rows a write
    reached: those of the units its areas reach (`patch`), or of the periods that read its months
    (`patch_months`)."""

    def __init__(
        self,
        answer: Answer,
        dims: list[Dimension],
        periods: list[Period],
        units: list[Unit],
        language: str,
        empty: bool,
        last_year: bool = True,
    ) -> None:
        self.answer, self.dims, self.periods, self.language, self.empty = (
            answer,
            dims,
            periods,
            language,
            empty,
        )
        self.asked = _asked_rows(units, answer.units)
        unit_ids = [pk for pk, _, _ in self.asked]
        try:
            self.columns = [_column_evaluator(answer, dim, unit_ids) for dim in dims]
            if None in self.columns:  # the cell-by-cell way reads in any order
                self._settle()
            # A count's months still coming (compute(streamed=True)) are summed as its periods' rows need
            # them: the first periods' rows are made while the database sums the next months.
            self.segments = [self._segment(d, period, None) for d in range(len(dims)) for period in periods]
            self._settle()
        except BaseException:
            for grid in self.grids():
                grid.abandon()
            raise
        self._positions: defaultdict[int, list[int]] | None = None
        self._flat: list[dict] | None = None
        self._places: list[np.ndarray] | None = None
        self.last_year = last_year
        self._months: frozenset[date] | None = None
        self._reads: list[list[set[str]]] | None = None
        self.changed: set[int] = set()  # the JSON blocks the last patch changed (for answered())

    def rows(self) -> list[dict]:
        """The answer's rows: a new list after each patch (the kept ones are shared, never changed)."""
        if self._flat is None:
            # filter(None, …): a row is a dict, never empty; the left-out cells are None.
            self._flat = list(chain.from_iterable(map(partial(filter, None), self.segments)))
        return self._flat

    def answered(self, before: Answered | None = None) -> Answered:
        """The rows as they are now, to keep; `before`: the kept answer a patch brought up to date, whose
        JSON the new one's is made from (only the blocks the patch changed encoded: `changed`)."""
        changed, self.changed = self.changed, set()
        rows = self.rows()
        if before is not None and not changed and before.rows is rows:
            return before  # the patch changed no row: the same answer, and its JSON if made
        return Answered(rows, self.segments, before, changed)

    def grids(self) -> list[CountGrid]:
        return [cells for cells in self.answer.cells.values() if isinstance(cells, CountGrid)]

    def _settle(self) -> None:
        for grid in self.grids():
            grid.settle()

    def areas(self) -> frozenset[str]:
        """The areas (versions.area_of) of every leaf whose counts reach an asked unit: worked out once
        per map of asked units (UnitMap.of keeps it), not once per answer computed, since the first
        patch after an answer computed anew paid it (some 13,000 leaves: 10 ms, the plain indicator's
        p95 after a write in the benchmark)."""
        units = self.answer.units
        if units is None:
            return frozenset({versions.EVERYTHING})
        found = _MAP_AREAS.get(units)
        if found is None:
            path = units.index.path
            found = frozenset(versions.area_of(path[leaf]) for leaf in set(units.leaf_places()[0]))
            _MAP_AREAS[units] = found
        return found

    def months(self) -> frozenset[date]:
        """The months (their first days) of every period the answer read: the asked ones, the year
        before, and those its formulas shift to. A write to other months does not reach it."""
        if self._months is None:
            ids = {q for reads in self._period_reads() for period_reads in reads for q in period_reads}
            days = _buckets([parse(q) for q in ids], monthly=False)
            self._months = frozenset(day.replace(day=1) for day in days)
        return self._months

    def _period_reads(self) -> list[list[set[str]]]:
        """Per dimension and asked period, the ids of the periods its row reads (the period, cùng kỳ,
        and where its formula shifts them): a month patch makes anew the rows of the periods that read
        a period it changed."""
        if self._reads is None:
            self._reads = []
            for dim in self.dims:
                chains = {chain for _, chain in needs(dim.tree)}
                self._reads.append(
                    [{q.id for q in periods_read(period, chains, self.last_year)} for period in self.periods]
                )
        return self._reads

    @property
    def patchable(self) -> bool:
        grids = self.grids()
        return bool(grids) and self.answer.units is not None and all(g.patchable for g in grids)

    def patch_months(self, months: set[date], counters: Counters | None = None) -> None:
        """Bring the counts of these months up to date for every leaf, then make anew the rows of the
        periods that read them (for every asked unit); `counters`: as compute()'s."""
        reached: set[str] = set()
        for grid in self.grids():
            reached |= grid.patch_months(months, counters)
        if not reached:
            return
        per_segment = _blocks_per_segment(len(self.asked))
        segments, width = list(self.segments), len(self.periods)
        for d, reads in enumerate(self._period_reads()):
            for j, period in enumerate(self.periods):
                if reads[j] & reached:
                    s = d * width + j
                    segments[s] = self._segment(d, period, None)
                    self.changed.update(range(s * per_segment, (s + 1) * per_segment))
        self.segments = segments
        self._flat = self._places = None

    def patch(self, areas: set[str]) -> None:
        """Bring the counts of these areas' leaves up to date, then the rows of the units they reach (a
        unit whose parent they reach too: share())."""
        assert self.answer.units is not None
        by_area = self.answer.units.index.by_area
        leaves = sorted({leaf for area in areas for leaf in by_area.get(area, ())})
        reached: set[int] = set()
        for grid in self.grids():
            reached |= grid.patch(leaves)
        if not reached:
            return
        if self._positions is None:  # each unit's positions, and its parent's (share() reads the parent)
            self._positions = defaultdict(list)
            for i, (pk, _, _) in enumerate(self.asked):
                self._positions[pk].append(i)
                parent = self.answer.parents.get(pk)
                if parent is not None:
                    self._positions[parent].append(i)
        positions = sorted({i for pk in reached for i in self._positions.get(pk, ())})
        if not positions:
            return
        segments, width = list(self.segments), len(self.periods)
        per_segment = _blocks_per_segment(len(self.asked))
        self.changed.update(
            s * per_segment + k for s in range(len(segments)) for k in {i // JSON_BLOCK for i in positions}
        )
        changed: list[tuple[int, int, dict]] = []  # (segment, position, row) where a row is replaced
        same_cells = True  # no row came or went: the flat list keeps its places
        for d in range(len(self.dims)):
            for j, period in enumerate(self.periods):
                s = d * width + j
                segment = segments[s] = list(segments[s])
                for i, row in zip(positions, self._segment(d, period, positions), strict=True):
                    if row is None or segment[i] is None:
                        same_cells &= row is segment[i]
                    else:
                        changed.append((s, i, row))
                    segment[i] = row
        self.segments = segments
        if same_cells and self._flat is not None:  # the rows' list copied, the changed rows put in place
            if self._places is None:
                self._places = self._flat_places()
            flat = list(self._flat)
            for s, i, row in changed:
                flat[self._places[s][i]] = row
            self._flat = flat
        else:
            self._flat = self._places = None

    def _flat_places(self) -> list[np.ndarray]:
        """Each segment's rows' places in the flat list of rows, counted past the segments before it (a
        running count of its rows: where a cell is left out the number is not used)."""
        out, before = [], -1
        for segment in self.segments:
            here = np.fromiter(
                map(operator.is_not, segment, repeat(None)), dtype=np.int64, count=len(segment)
            )
            places = np.cumsum(here) + before
            out.append(places)
            if len(places):
                before = int(places[-1])
        return out

    def _segment(self, d: int, period: Period, positions: list[int] | None) -> list[dict | None]:
        """The rows of dimension d at the period for the asked units (at these positions only)."""
        dim, column_of, empty = self.dims[d], self.columns[d], self.empty
        asked = self.asked if positions is None else [self.asked[i] for i in positions]
        decimals, goals = dim.decimals, self.answer.targets
        template = _row_template(dim, period, self.language)
        out: list[dict | None] = []
        add = out.append
        if column_of is not None:  # counts: never estimates, never carried
            values, lasts = column_of(period), column_of(period.last_year())
            if positions is not None:
                values, lasts = values[positions], lasts[positions]
            out = _count_rows(template, asked, values, lasts, decimals, empty)
            if goals:
                for row, (unit_id, _, _), raw in zip(out, asked, values.tolist(), strict=True):
                    goal = None if row is None else target_of(goals, dim.code, unit_id, period)
                    if row is not None and goal is not None:  # the template keeps the fields' order
                        row["target"] = goal
                        row["target_pct"] = _round(_pct(None if math.isnan(raw) else raw, goal), 2)
            return out
        value_of, last_year = _evaluator(self.answer, dim), period.last_year()
        for unit_id, ref, name in asked:
            value, estimate, carried = value_of(unit_id, period)
            if value is None and not empty:
                add(None)
                continue
            last = value_of(unit_id, last_year)[0]
            goal = target_of(goals, dim.code, unit_id, period) if goals else None
            add({
                **template, "ou": ref, "value": _round(value, decimals),
                "same_period_last_year": _round(last, decimals),
                "change_pct": _round(_pct(value, last, change=True), 2),
                "target": goal, "target_pct": _round(_pct(value, goal), 2),
                "status": "estimate" if estimate else "final", "carried": carried, "ou_name": name,
            })  # fmt: skip
        return out


class Kept(NamedTuple):
    """An answer kept: the versions it is current under (the sources', in name order, and the area and
    month counters of its kinds where they are counted), its rows, and what it was computed from."""

    version: tuple[int, ...]
    areas: dict[str, int] | None
    answered: Answered
    computed: Computed


# A write reaching more areas than this (a province each) is answered anew rather than patched: a patch
# reads each moved area's leaves again, one look-up per leaf, and at 3 M events (docs/decisions.md,
# Indicators) 16 provinces cost about what reading every leaf packed and making every row cost.
PATCH_AREAS = 16
# A write reaching at most this share of an answer's months is patched by month (every leaf's rows of
# those months read again packed), whatever its areas: a morning's batches write today in every
# province. A judgement, not a measured crossover: past a quarter, a month patch reads and remakes
# most of what computing anew does.
PATCH_MONTHS_SHARE = 0.25
# How much more a patch by area pays per rollup row than one by month: it looks each leaf up by the
# rollup's key, where a month patch reads its rows packed in one statement. At 10 M events (median of
# 30, load 2.4): Hà Nội's 684 leaves over 24 months, 2,280 leaf-months, in 4.7 ms; one month of every
# leaf, 5,900 rows, in 2.2 ms: some 4.5 times as much per row.
LEAF_READ_COST = 4


def _patch_of(
    computed: Computed, reached: set[str], months: set[date], counters: Counters
) -> tuple[str, Callable[[], None]] | None:
    """How to bring a kept answer up to date after a write to these of its areas and months, the
    cheaper of a patch by area and one by month (each reads its share of the answer's rollup rows),
    as ("months" or "areas", the patch), or None: computed anew."""
    if not computed.patchable:
        return None
    month_share = len(months) / len(computed.months())
    area_share = len(reached) / len(computed.areas())
    if month_share <= PATCH_MONTHS_SHARE and (
        month_share <= area_share * LEAF_READ_COST or len(reached) > PATCH_AREAS
    ):
        return "months", partial(computed.patch_months, months, counters)
    if len(reached) <= PATCH_AREAS:
        return "areas", partial(computed.patch, reached)
    return None


class AnswerCache:
    """Answers of rows(), kept per process under the data versions they were computed with.

    A hit costs one small query (the versions) and a copy of the list; any write to what the answer
    reads changes a version, so the next caller computes it again: the answer stays live. A write to
    the rollups (PostgreSQL counts them by kind and province, and by kind and month,
    indicators.versions) is applied to the kept answer instead where that is cheaper (`_patch_of`):
    the counts of the written areas' leaves are read again and only the rows of the units they reach
    are made anew (`Computed.patch`), or the written months' rows of every leaf and only the rows of
    the periods that read them (`Computed.patch_months`: a morning's batches write today's month in
    every province); an answer over none of the written areas, or none of the written months, is
    current as it is. An answer computed anew takes the monthly rollup rows other questions read from
    `months` (KeptMonths) where no write has reached them since. Identical questions asked at once (a
    morning's thousand screens) are computed once; the others wait for it. Bounded by rows, least
    recently used first out (DIEUHANH_ANALYTICS_CACHE_ROWS, 0 turns it off). Inside an atomic block
    nothing is cached or served: its writes are not yet anyone else's, and a rollback would let their
    version number come back with other data (indicators.versions)."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.months = KeptMonths(max_rows * MONTH_ROWS_PER_ROW)
        self._lock = threading.Lock()
        self._answers: OrderedDict[tuple, Kept] = OrderedDict()
        self._rows = 0
        self._pending: dict[tuple, threading.Event] = {}
        self.hits = self.misses = self.patches = self.unmoved = 0
        self.month_patches = 0  # of the patches, those by month (Computed.patch_months)

    def answer(
        self,
        question: tuple,
        sources: frozenset[str],
        kinds: frozenset[str],
        compute: Callable[[Counters | None], Computed],
    ) -> Answered:
        alias = router.db_for_read(RollupMonth)
        if not self.max_rows or versions.in_transaction(alias):
            return compute(None).answered()
        version = versions.current(sources, alias)
        if version is None:
            return compute(None).answered()
        key = (alias, question)
        while True:
            with self._lock:
                kept = self._answers.get(key)
                if kept is not None and kept.version == version:
                    self._answers.move_to_end(key)
                    self.hits += 1
                    return kept.answered
                waiting = self._pending.get(key)
                if waiting is None:
                    self._pending[key] = threading.Event()
                    break
            waiting.wait(30)  # then look again: the answer, or compute it ourselves if it failed
        try:
            found = self._current(key, kept, sorted(sources), version, kinds, alias, compute)
            self._keep(key, found)
            return found.answered
        finally:
            with self._lock:
                self._pending.pop(key).set()

    def _current(
        self,
        key: tuple,
        kept: Kept | None,
        names: list[str],
        version: tuple[int, ...],
        kinds: frozenset[str],
        alias: str,
        compute: Callable[[Counters | None], Computed],
    ) -> Kept:
        """The kept answer brought up to `version`: as it is, patched, or computed anew."""
        moved = (
            None
            if kept is None
            else {n for n, a, b in zip(names, kept.version, version, strict=True) if a != b}
        )
        # The areas' versions are read before the data, as the sources' are (indicators.versions).
        areas = versions.areas(kinds, alias)
        if (
            kept is not None
            and moved is not None
            and moved <= {"events"}
            and areas is not None
            and kept.areas is not None
        ):
            changed = {s for s in areas.keys() | kept.areas.keys() if areas.get(s) != kept.areas.get(s)}
            touched = {s.partition("@")[2] for s in changed if "@" in s}
            when = {m for s in changed if (m := versions.month_of(s)) is not None}
            computed = kept.computed
            if (
                versions.EVERYTHING not in changed
                and versions.EVERYTHING not in touched
                and versions.EVERYTHING not in computed.areas()  # no map of its leaves: any write reaches it
            ):
                # Every row written lies in one of the touched areas and one of the touched months. A
                # statement bumps both; areas moved with no month (triggers older than the months', a
                # migrate not yet run) say nothing of the months: any of the answer's may have moved.
                reached = touched & computed.areas()
                months = when & computed.months() if when or not touched else set(computed.months())
                if not reached or not months:
                    self.unmoved += 1
                    return Kept(version, areas, kept.answered, computed)
                way = _patch_of(computed, reached, months, (alias, areas))
                if way is not None:
                    try:
                        way[1]()
                    except BaseException:
                        self._drop(key)  # half patched
                        raise
                    self.patches += 1
                    self.month_patches += way[0] == "months"
                    return Kept(version, areas, computed.answered(kept.answered), computed)
        self.misses += 1
        computed = compute(None if areas is None else (alias, areas))
        return Kept(version, areas, computed.answered(), computed)

    def _keep(self, key: tuple, found: Kept) -> None:
        with self._lock:
            old = self._answers.pop(key, None)
            if old is not None:
                self._rows -= len(old.answered.rows)
            if len(found.answered.rows) > self.max_rows:
                return
            self._answers[key] = found
            self._rows += len(found.answered.rows)
            while self._rows > self.max_rows:
                _, dropped = self._answers.popitem(last=False)
                self._rows -= len(dropped.answered.rows)

    def _drop(self, key: tuple) -> None:
        with self._lock:
            old = self._answers.pop(key, None)
            if old is not None:
                self._rows -= len(old.answered.rows)

    def clear(self, months: bool = True) -> None:
        """Forget every answer, and (unless `months` is False) the monthly rollup rows kept."""
        with self._lock:
            self._answers.clear()
            self._rows = 0
        if months:
            self.months.clear()


# Monthly rollup rows kept (KeptMonths) per answer row the cache keeps: a rollup row is 16 bytes, an
# answer's row about 1 kB, so the rows of a year of a few counts over every commune fit beside them.
MONTH_ROWS_PER_ROW = 20


class KeptMonths:
    """The monthly rollup rows of a count (kind and dimensions) kept per month and process, each under
    its month's counter (indicators.versions: `kind#YYYYMM`, and `*` for an emptied rollup) read
    before the rows: a new question over months some other question read (another map's units, the
    indicator with cùng kỳ or a ratio over it, the API after the room) takes them from memory, and
    reads from the database only the months written since. A national read of 24 months is 94,000
    rows and 20 of a first answer's 50 ms at 10 M events (issue 18). PostgreSQL only (SQLite counts no
    months), never inside a transaction of the code's own; bounded by rows, least recently used out.

    What one process reads it also leaves in the database, one pack per month under the same counters
    (indicators.MonthPack, SharedMonths), and a month it does not keep is taken from a current pack
    before it is summed from the rollups: a worker started after a deploy, or the next of a room's
    several workers, reads a national answer's 24 months as 24 rows and not as 94,000 (the rollup rows'
    index scan alone is most of a first answer, issue 18)."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._months: OrderedDict[tuple, tuple[tuple, np.ndarray, np.ndarray]] = OrderedDict()
        self._rows = 0
        # Months taken from memory, from the database, and of those from packs another process made.
        self.kept = self.read_months = self.shared = 0

    def chunks(
        self,
        counted: QuerySet,
        kind: str,
        dims: tuple[str, ...],
        spread: _Spread,
        buckets: list[int] | None = None,
        read_before: Counters | None = None,
        share: bool = True,
    ) -> Generator[Chunk]:
        """The counted rows in the spread's months (its buckets' first days), or in these of its buckets
        in this order: first those kept (one chunk), then the others month by month as the database
        sends them (_month_rows), each kept as it comes; `read_before`: the counters the answer cache
        read before, of this database (else they are read here, before the rows); `share`: take the
        months from packs, and leave packs of the months summed (not for a patch: its months were just
        written, so none of theirs is current, and one made now goes stale at the next write, which on
        a live morning comes every few seconds). Nothing is read until the first chunk is asked for."""
        alias = counted.db  # the router asked once: the counters and the rows from the same server
        counted = counted.using(alias)
        asked = range(len(spread.firsts)) if buckets is None else buckets
        counters: dict[str, int] | None
        if not self.max_rows or versions.in_transaction(alias):
            counters = None
        elif read_before is not None and read_before[0] == alias:
            counters = read_before[1]
        else:
            counters = versions.areas(frozenset({kind}), alias)
        if counters is None:  # nothing kept: read
            if connections[alias].vendor == "postgresql":
                yield from _month_rows(counted, spread, list(asked))
            else:
                months = counted.filter(month__in=[spread.firsts[b] for b in asked])
                yield Chunk(list(asked), *_read_rows(months, "month", spread))
            return
        emptied = counters.get(versions.EVERYTHING)
        parts: list[Chunk] = []
        wanted: dict[int, tuple[tuple, tuple]] = {}  # bucket → (key, version)
        with self._lock:
            for b in asked:
                month = spread.firsts[b]
                key, version = (
                    (alias, kind, dims, month),
                    (counters.get(versions.month_source(kind, month)), emptied),
                )
                found = self._months.get(key)
                if found is not None and found[0] == version:
                    self._months.move_to_end(key)
                    parts.append(Chunk([b], found[1], np.full(len(found[1]), b), found[2]))
                else:
                    wanted[b] = (key, version)
            self.kept += len(parts)
            self.read_months += len(wanted)
        if parts:
            yield Chunk([b for p in parts for b in p.buckets], *_joined(parts))
        if not wanted:
            return
        if versions.in_transaction(alias):  # opened since the counters were read: its writes are its own
            yield from _month_rows(counted, spread, list(wanted))
            return
        numbers = {spread.firsts[b]: version[0] for b, (_, version) in wanted.items()}
        shared = SharedMonths(kind, SharedMonths.dims_of(dims), numbers, emptied) if share else None
        rows = _month_rows(counted, spread, list(wanted), shared)
        try:
            for chunk in rows:
                key, version = wanted[chunk.buckets[0]]
                if version[0] is not None:  # a month never written has no counter: nothing is kept
                    self._keep(key, (version, chunk.leaf, chunk.counts))
                yield chunk
        finally:
            rows.close()
        if shared is not None:
            with self._lock:
                self.shared += shared.taken
            shared.share(alias)  # the read has ended: the connection is free

    def _keep(self, key: tuple, found: tuple[tuple, np.ndarray, np.ndarray]) -> None:
        for array in found[1:]:
            array.flags.writeable = False  # shared by every grid that reads the month
        with self._lock:
            old = self._months.pop(key, None)
            if old is not None:
                self._rows -= len(old[1])
            if len(found[1]) > self.max_rows:
                return
            self._months[key] = found
            self._rows += len(found[1])
            while self._rows > self.max_rows:
                _, dropped = self._months.popitem(last=False)
                self._rows -= len(dropped[1])

    def clear(self) -> None:
        with self._lock:
            self._months.clear()
            self._rows = 0


ANSWERS = AnswerCache(getattr(settings, "ANALYTICS_CACHE_ROWS", 200_000))


def _row_template(dim: Dimension, period: Period, language: str) -> dict[str, Any]:
    """A row's fields in their order, the per-row ones to fill in: copying a template costs a third of
    building each row's dict anew (40,000 rows in a national answer)."""
    return {
        "dx": dim.code, "pe": period.id, "ou": None, "value": None, "unit": dim.unit,
        "same_period_last_year": None, "change_pct": None, "target": None, "target_pct": None,
        "status": "final", "carried": False, "pe_label": period.label(language), "ou_name": None,
    }  # fmt: skip


def _count_rows(
    template: dict[str, Any],
    asked: list[tuple[int, str, str]],
    values: np.ndarray,
    lasts: np.ndarray,
    decimals: int,
    empty: bool,
) -> list[dict | None]:
    """_segment's rows of counts (a target is added after): only the units with a value
    (every one with `empty`) are visited, their figures rounded and their dicts made in one pass. Half a
    national yoy answer's units have no value in a month (no cùng kỳ to compare with), and a loop over
    every asked unit, most of them to put a None, cost more than making the dicts (issue 18)."""
    at = np.arange(len(values)) if empty else np.flatnonzero(~np.isnan(values))
    values, lasts = values[at], lasts[at]
    places = at.tolist()
    made: list[dict | None] = []
    add, copy = made.append, template.copy
    for (_unit, ref, name), value, last, pct in zip(
        map(asked.__getitem__, places),
        _shown(values, decimals),
        _shown(lasts, decimals),
        _shown(_change_pct(values, lasts), 2),
        strict=True,
    ):
        # A copy and five stores: a quarter less than {**template, …}, which merges into an empty dict
        # and then builds and merges a second one (13.6 against 18.5 ms for 20,000 rows, issue 18).
        row = copy()
        row["ou"] = ref
        row["value"] = value
        row["same_period_last_year"] = last
        row["change_pct"] = pct
        row["ou_name"] = name
        add(row)
    if len(made) == len(asked):
        return made
    out: list[dict | None] = [None] * len(asked)
    for i, made_row in zip(places, made, strict=True):
        out[i] = made_row
    return out


_COLUMN_CALLS = frozenset({"yoy", *SHIFTS})


def _column_evaluator(
    answer: Answer, dim: Dimension, unit_ids: list[int]
) -> Callable[[Period], np.ndarray] | None:
    """The dimension's values at a period for every asked unit at once, as an array in the asked
    order (NaN where a value is missing), where its formula reads only counts (no estimates or carried
    values to track) through arithmetic, shifts and yoy — the room's and the wall's formulas; None where
    the cell-by-cell evaluator must answer. Same rules and the same float operations in the same order
    as formula.evaluate: a missing figure, a division by zero or a result that is not finite is
    missing."""
    names = f.refs(dim.tree)
    grids = {name: answer.cells.get(name) for name in names}
    if not all(isinstance(g, CountGrid) for g in grids.values()) or not _columnable(dim.tree):
        return None
    for grid in grids.values():
        assert isinstance(grid, CountGrid)
        if len(grid.units) != len(grid.unit_ids) or grid.unit_ids[: len(unit_ids)] != unit_ids:
            return None  # a unit asked twice: the cell-by-cell way
    n = len(unit_ids)

    def column(tree: f.Node, period: Period) -> np.ndarray:
        if isinstance(tree, f.Number):
            return np.full(n, tree.value)
        if isinstance(tree, f.Ref):
            grid = grids[tree.name]
            assert isinstance(grid, CountGrid)
            found = grid.of_period(period.id)
            return np.full(n, np.nan) if found is None else found[:n]
        if isinstance(tree, f.Unary):
            operand = column(tree.operand, period)
            return operand if tree.op != "-" else -operand
        if isinstance(tree, f.Binary):
            left, right = column(tree.left, period), column(tree.right, period)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                if tree.op == "+":
                    found = left + right
                elif tree.op == "-":
                    found = left - right
                elif tree.op == "*":
                    found = left * right
                else:
                    found = left / right
                    found[right == 0] = np.nan
            return _finite_or_nan(found)
        assert isinstance(tree, f.Call)
        if tree.name == "yoy":  # formula._percent(now - before, |before|)
            return _change_pct(column(tree.args[0], period), column(tree.args[0], period.last_year()))
        return column(tree.args[0], SHIFTS[tree.name](period))

    def evaluate(period: Period) -> np.ndarray:
        return column(dim.tree, period)

    return evaluate


def _change_pct(now: np.ndarray, before: np.ndarray) -> np.ndarray:
    """formula._percent(now - before, |before|) over whole columns: missing where before is 0 or the
    result is not finite."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        found = (now - before) / np.abs(before) * 100
    found[before == 0] = np.nan
    return _finite_or_nan(found)


def _finite_or_nan(found: np.ndarray) -> np.ndarray:
    found[~np.isfinite(found)] = np.nan
    return found


def _shown(values: np.ndarray, decimals: int) -> list[float | int | None]:
    """_round() of every value (None for NaN), in numpy: a national answer rounds some 100,000 figures.
    Away from a tie, rint(x × 10^d) / 10^d is the float nearest the decimal that round(x, d) gives (the
    error of x × 10^d is far below the tie margin, and both end in one correctly rounded operation);
    a tie, a number too large for that, or more decimals than _SCALE holds takes _round itself."""
    out = np.full(len(values), None, dtype=object)
    known = ~np.isnan(values)
    if decimals >= len(_SCALE):
        out[known] = [_round(v, decimals) for v in values[known].tolist()]
        return out.tolist()
    scale = _SCALE[decimals]
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.abs(values) * scale
        whole = values == np.trunc(values)
        tie = ~whole & (np.abs(scaled - np.trunc(scaled) - 0.5) <= 1e-9 * np.maximum(1.0, scaled))
        slow = known & (tie | ~(scaled < 2.0**52))
        fast = known & ~slow
        rounded = np.where(whole, values, np.rint(values * scale) / scale)
    ints = fast & (rounded == np.trunc(rounded))
    floats = fast & ~ints
    out[ints] = rounded[ints].astype(np.int64)
    out[floats] = rounded[floats]
    if slow.any():
        out[slow] = [_round(v, decimals) for v in values[slow].tolist()]
    return out.tolist()


def _columnable(tree: f.Node) -> bool:
    if isinstance(tree, f.Number | f.Ref):
        return True
    if isinstance(tree, f.Unary):
        return _columnable(tree.operand)
    if isinstance(tree, f.Binary):
        return _columnable(tree.left) and _columnable(tree.right)
    return (
        isinstance(tree, f.Call)
        and tree.name in _COLUMN_CALLS
        and len(tree.args) == 1
        and _columnable(tree.args[0])
    )


Evaluated = tuple[float | None, bool, bool]  # value, any estimate read, any value carried across maps


def _evaluator(answer: Answer, dim: Dimension) -> Callable[[int, Period], Evaluated]:
    """The dimension's value at (unit, period); a plain reference is a look-up (most questions)."""
    if isinstance(dim.tree, f.Ref):
        cells = answer.cells.get(dim.tree.name, {})

        def look_up(unit_id: int, period: Period) -> Evaluated:
            cell = cells.get((unit_id, period.id))
            if cell is None or isinstance(cell, float):
                return cell, False, False
            return cell

        return look_up

    def evaluate(unit_id: int, period: Period) -> Evaluated:
        track = Track()
        value = f.evaluate(dim.tree, CellEnv(answer, unit_id, period, track))
        return value, track.estimate, track.carried

    return evaluate


def _pct(value: float | None, base: float | None, *, change: bool = False) -> float | None:
    if value is None or not base:
        return None
    return ((value - base) / abs(base) if change else value / base) * 100


def _round(value: float | None, decimals: int) -> float | int | None:
    """Half away from zero on the number as written (2.675 → 2.68), as a reader rounds."""
    if value is None:
        return None
    if value.is_integer():
        return int(value)
    # Away from a tie, float rounding gives the same digits as the decimal rounding below at a
    # twentieth of its cost; only a number that reads as a tie ('2.675') takes the exact path.
    scaled = abs(value) * _SCALE[decimals] if decimals < len(_SCALE) else None
    if scaled is not None and abs(scaled - int(scaled) - 0.5) > 1e-9 * max(1.0, scaled):
        rounded = round(value, decimals)
    else:
        step = Decimal(1).scaleb(-decimals)
        rounded = float(Decimal(repr(value)).quantize(step, rounding=ROUND_HALF_UP))
    return int(rounded) if rounded.is_integer() else rounded


_SCALE = tuple(10.0**n for n in range(16))
