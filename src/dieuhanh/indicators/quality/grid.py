"""The figures of many formulas at many units × periods, for validation runs and outlier detection.

Two ways, one answer:
- **stored**: when every unit asked is a unit where figures are recorded (a leaf: a commune), the
  element is asked at its own period type, and no value of it for these periods is stored on the
  other map (nothing to carry through the succession), a unit's figure is its stored value (its
  options summed, averaged for averages). One query for all such elements, read without Django's
  per-row conversions: the way a national run over 3,321 communes × 12 months × 50 elements stays
  within seconds.
- **analytics**: anything else (provinces, the nation, year-to-date, figures of the other map,
  warehouse counts `ev.*`, shifts such as yoy/previous/share) is asked of `indicators.analytics`,
  which combines, carries and shifts as the analytics API does.

`tests/quality/test_rules.py` checks that the two agree where both apply.

At national scale (3,321 communes × 50 elements × 12 months: two million values) the stored way is
also asked as a matrix: the database pivots the values (one row per cell, or per series, one column
per reference or period: `cell_matrix`, `series_matrix`) and numpy judges whole columns at once, so
no Python work is done per value (`rules._run_matrix`, `outliers._mod_z_matrix`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connections, transaction

from dieuhanh.indicators import analytics
from dieuhanh.indicators import formula as f
from dieuhanh.indicators.models import DataElement, DataValue
from dieuhanh.indicators.periods import Period
from dieuhanh.indicators.unitmap import unit_index
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area

Key = tuple[int, str]  # (unit id, period id)
Column = dict[Key, float]  # one reference's figures

PLAIN_CALLS = frozenset({"abs", "round", "min", "max", "coalesce"})
"""Calls that look at nothing but the cell itself; any other (yoy, ytd, share, target, …) shifts."""


def plain(tree: f.Node) -> bool:
    """True when the formula reads only its own unit and period (no shift, no target)."""
    if isinstance(tree, f.Call):
        return tree.name in PLAIN_CALLS and all(plain(a) for a in tree.args)
    if isinstance(tree, f.Unary):
        return plain(tree.operand)
    if isinstance(tree, f.Binary):
        return plain(tree.left) and plain(tree.right)
    return True


def expand(text: str) -> f.Node:
    """A rule side's tree, references to indicators replaced by their formulas (as analytics does)."""
    return analytics.inline(f.parse(text), ())


# Compiling a plain formula to a Python function of a cell


Keyedf = Callable[[Key], float | None]


def compile_keyed(tree: f.Node, columns: dict[str, Column], missing_as_zero: bool = False) -> Keyedf:
    """The plain formula as a function of a (unit, period) key over the columns read: no per-cell
    dictionary is built, which over a national run is most of the work saved."""
    if isinstance(tree, f.Number):
        value = tree.value
        return lambda key: value
    if isinstance(tree, f.Ref):
        column = columns.get(tree.name, {})
        if missing_as_zero:
            return lambda key: column.get(key, 0.0)
        return column.get
    if isinstance(tree, f.Unary):
        inner = compile_keyed(tree.operand, columns, missing_as_zero)
        if tree.op == "+":
            return inner
        return lambda key: None if (x := inner(key)) is None else -x
    if isinstance(tree, f.Binary):
        left = compile_keyed(tree.left, columns, missing_as_zero)
        right = compile_keyed(tree.right, columns, missing_as_zero)
        arithmetic, op = f._arithmetic, tree.op
        return lambda key: arithmetic(op, left(key), right(key))
    if isinstance(tree, f.Call):
        node, names = tree, sorted(f.refs(tree))

        def call(key: Key) -> float | None:
            cell = {n: v for n in names if (v := columns.get(n, {}).get(key)) is not None}
            return f.evaluate(node, _CellEnv(cell, missing_as_zero))

        return call
    raise TypeError(tree)


@dataclass
class _CellEnv:
    cell: dict[str, float]
    missing_as_zero: bool

    def value(self, ref: str) -> float | None:
        found = self.cell.get(ref)
        return 0.0 if found is None and self.missing_as_zero else found

    def shifted(self, how: str) -> None:
        return None

    def target(self, ref: str) -> None:
        return None


# Reading


@dataclass
class Grid:
    """The figures of the references asked, per (unit, period)."""

    columns: dict[str, Column]


def read(refs: set[str], units: list[Unit], periods: list[Period], area: Area | None = None) -> Grid:
    """The figures of `refs` (elements, element.option, ev.…) at every unit × period asked."""
    columns: dict[str, Column] = {}
    fast, slow = stored_refs(refs, units, periods)
    if fast:
        columns.update(_stored(fast, units, periods))
    if slow:
        dims = [analytics.Dimension(r, r, "", 2, f.Ref(r), None) for r in sorted(slow)]
        answer = analytics.compute(dims, periods, units, area)
        wanted = {p.id for p in periods}
        for ref in slow:
            cells = answer.cells.get(ref, {})
            columns[ref] = {
                key: float(c if isinstance(c, float) else c.value)
                for key, c in cells.items()
                if key[1] in wanted
            }
    return Grid(columns)


def series(
    refs: list[str], units: list[Unit], periods: list[Period]
) -> tuple[dict[str, dict[int, dict[str, float]]], set[str]]:
    """Per reference, per unit, its figures by period — for the references the stored way answers
    whose element has no disaggregation (one value per cell: no sums to make), straight from the rows
    (outliers judge series, so no (unit, period) column is built first); and the other references."""
    fast, slow = stored_refs(set(refs), units, periods)
    direct = {r: e for r, e in fast.items() if not e.option and not e.element.options}
    slow |= set(fast) - set(direct)
    out: dict[str, dict[int, dict[str, float]]] = {ref: {} for ref in direct}
    if not direct:
        return out, slow
    by_element = {e.element.pk: out[ref] for ref, e in direct.items()}
    rows = DataValue.objects.filter(element_id__in=list(by_element), period__in=[p.id for p in periods])
    asked = {u.pk for u in units}
    if len(asked) <= 2000:
        rows = rows.filter(unit_id__in=list(asked))
    query = rows.values_list("element_id", "unit_id", "period", "value").order_by()
    for element_id, unit_id, period, value in _fetch(query):
        if unit_id in asked:
            target = by_element[element_id]
            found = target.get(unit_id)
            if found is None:
                found = target[unit_id] = {}
            found[period] = value
    return out, slow


def linear(tree: f.Node) -> bool:
    """True for a sum or difference of references and numbers (`#{a} + #{b} - 3`): what
    `vectorised` computes over whole columns, with the very float operations `f.evaluate` does."""
    if isinstance(tree, f.Unary):
        return linear(tree.operand)
    if isinstance(tree, f.Binary):
        return tree.op in ("+", "-") and linear(tree.left) and linear(tree.right)
    return isinstance(tree, f.Number | f.Ref)


def vectorised(tree: f.Node, columns: dict[str, np.ndarray], missing_as_zero: bool) -> Any:
    """A linear formula (see `linear`) over whole columns (NaN where a figure is missing)."""
    if isinstance(tree, f.Number):
        return np.float64(tree.value)
    if isinstance(tree, f.Ref):
        column = columns[tree.name]
        return np.nan_to_num(column, nan=0.0) if missing_as_zero else column
    if isinstance(tree, f.Unary):
        inner = vectorised(tree.operand, columns, missing_as_zero)
        return inner if tree.op == "+" else -inner
    if isinstance(tree, f.Binary):
        left = vectorised(tree.left, columns, missing_as_zero)
        right = vectorised(tree.right, columns, missing_as_zero)
        return left + right if tree.op == "+" else left - right
    raise TypeError(tree)


@dataclass
class CellMatrix:
    """Stored figures by cell: `units[i]`, `periods[i]` and each reference's `columns[ref][i]`."""

    units: np.ndarray
    periods: np.ndarray
    columns: dict[str, np.ndarray]


def cell_matrix(
    refs: dict[str, analytics.ElementRef], units: list[Unit], periods: list[Period]
) -> CellMatrix:
    """One row per (unit, period) where any of refs is stored, one column per reference: its options
    summed (averaged for averages), as `_stored` makes them; the database pivots."""
    order = sorted(refs)
    picks, params = [], []
    for ref in order:
        found = refs[ref]
        how = "AVG" if found.element.aggregation == "average" else "SUM"
        option = " AND option = %s" if found.option else ""
        picks.append(f"{how}(value) FILTER (WHERE element_id = %s{option})")
        params += [found.element.pk, *([found.option] if found.option else [])]
    element_ids = sorted({found.element.pk for found in refs.values()})
    where, where_params = _where(element_ids, units, periods)
    rows = _pivot(
        f"SELECT unit_id, period, {', '.join(picks)} FROM {DataValue._meta.db_table} WHERE {where}"  # noqa: S608 - placeholders only
        " GROUP BY unit_id, period",
        params + where_params,
        units,
    )
    values = _floats([r[2:] for r in rows], len(order))
    return CellMatrix(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=object),
        {ref: values[:, i] for i, ref in enumerate(order)},
    )


def series_matrix(
    refs: list[str], units: list[Unit], periods: list[Period]
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], set[str]]:
    """As `series`, as matrices: per reference, the units (ids) that report it and their figures, one
    column per period (NaN where none is stored); and the references this way does not answer."""
    fast, slow = stored_refs(set(refs), units, periods)
    direct = {r: e for r, e in fast.items() if not e.option and not e.element.options}
    slow |= set(fast) - set(direct)
    if not direct:
        return {}, slow
    pids = [p.id for p in periods]
    picks = ", ".join(["MAX(value) FILTER (WHERE period = %s)"] * len(pids))
    where, where_params = _where(sorted({e.element.pk for e in direct.values()}), units, periods)
    rows = _pivot(
        f"SELECT element_id, unit_id, {picks} FROM {DataValue._meta.db_table} WHERE {where}"  # noqa: S608 - placeholders only
        " GROUP BY element_id, unit_id",
        pids + where_params,
        units,
        unit_column=1,
    )
    elements = np.array([r[0] for r in rows], dtype=np.int64)
    unit_ids = np.array([r[1] for r in rows], dtype=np.int64)
    values = _floats([r[2:] for r in rows], len(pids))
    out = {}
    for ref, found in direct.items():
        mine = elements == found.element.pk
        out[ref] = (unit_ids[mine], values[mine])
    return out, slow


def database_pivots() -> bool:
    """Whether the database groups the values into series faster than it sends them (PostgreSQL,
    in parallel; SQLite sorts to group)."""
    return connections[DataValue.objects.db].vendor == "postgresql"


def _where(element_ids: list[int], units: list[Unit], periods: list[Period]) -> tuple[str, list[Any]]:
    pids = [p.id for p in periods]
    sql = (
        f"element_id IN ({', '.join(['%s'] * len(element_ids))})"
        f" AND period IN ({', '.join(['%s'] * len(pids))})"
    )
    params: list[Any] = [*element_ids, *pids]
    if len(units) <= 2000:  # beyond, a list of ids costs more than it saves: the rows are kept below
        sql += f" AND unit_id IN ({', '.join(['%s'] * len(units))})"
        params += [u.pk for u in units]
    return sql, params


def _pivot(sql: str, params: list[Any], units: list[Unit], unit_column: int = 0) -> list[tuple]:
    db = DataValue.objects.db
    with transaction.atomic(using=db), connections[db].cursor() as cursor:
        if connections[db].vendor == "postgresql":
            # A national pivot looks expensive to the planner, whose JIT compilation then costs
            # seconds more than the query; the grouping fits in memory at this size.
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if len(units) > 2000:
        asked = {u.pk for u in units}
        rows = [r for r in rows if r[unit_column] in asked]
    return rows


def _floats(rows: list[Any], width: int) -> np.ndarray:
    """The figures as a float matrix, NaN where none is stored."""
    if not rows:
        return np.empty((0, width))
    return np.array(rows, dtype=np.float64)


def stored_refs(
    refs: set[str], units: list[Unit], periods: list[Period]
) -> tuple[dict[str, analytics.ElementRef], set[str]]:
    """The references the stored way can answer, and the others."""
    slow: set[str] = set()
    elements: dict[str, analytics.ElementRef] = {}
    for ref in refs:
        found = analytics.reference(ref)
        if isinstance(found, analytics.ElementRef):
            elements[ref] = found
        else:
            slow.add(ref)
    if not elements:
        return {}, slow
    index = unit_index()
    editions = {u.edition_id for u in units}
    leaves_only = len(editions) == 1 and all(index.leaves.get(u.pk, [u.pk]) == [u.pk] for u in units)
    types = {p.type for p in periods}
    fast: dict[str, analytics.ElementRef] = {}
    if leaves_only:
        pids = [p.id for p in periods]
        carried = set(
            DataValue.objects.filter(element__in={e.element.pk for e in elements.values()}, period__in=pids)
            .exclude(unit__edition_id=next(iter(editions)))
            .values_list("element_id", flat=True)
            .distinct()
        )
        for ref, found in elements.items():
            element = found.element
            if types == {element.period_type} and element.pk not in carried:
                fast[ref] = found
    slow |= set(elements) - set(fast)
    return fast, slow


def _stored(
    refs: dict[str, analytics.ElementRef], units: list[Unit], periods: list[Period]
) -> dict[str, Column]:
    by_element: dict[int, list[tuple[str, str]]] = defaultdict(list)  # element → [(ref, option)]
    elements: dict[int, DataElement] = {}
    for ref, found in refs.items():
        by_element[found.element.pk].append((ref, found.option))
        elements[found.element.pk] = found.element
    rows = DataValue.objects.filter(element_id__in=list(by_element), period__in=[p.id for p in periods])
    asked = {u.pk for u in units}
    if len(asked) <= 2000:
        rows = rows.filter(unit_id__in=list(asked))
    query = rows.values_list("element_id", "option", "unit_id", "period", "value").order_by()
    sums: dict[str, Column] = {ref: {} for ref in refs}
    counts: dict[str, dict[Key, int]] = {ref: defaultdict(int) for ref in refs}
    # element → the columns it adds to: (column, counts or None, option wanted or "")
    targets: dict[int, list[tuple[Column, dict[Key, int] | None, str]]] = {
        element_id: [
            (sums[ref], counts[ref] if elements[element_id].aggregation == "average" else None, option)
            for ref, option in wanted
        ]
        for element_id, wanted in by_element.items()
    }
    for element_id, option, unit_id, period, value in _fetch(query):
        if unit_id not in asked:
            continue
        key = (unit_id, period)
        for column, n, wanted_option in targets[element_id]:
            if wanted_option and wanted_option != option:
                continue
            column[key] = column[key] + value if key in column else value
            if n is not None:
                n[key] += 1
    for ref, column in sums.items():
        if elements[refs[ref].element.pk].aggregation == "average":
            n = counts[ref]
            for key in column:
                column[key] /= n[key]
    return sums


def _fetch(query: Any) -> list[tuple]:
    sql, params = query.query.sql_with_params()
    with connections[query.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
