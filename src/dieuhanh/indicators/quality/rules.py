"""Validation rules: made and changed (audited), checked where a value enters, run over any area.

- `screen` is called by the one write path of data values (indicators.datavalues.import_values), so
  the entry page, the API, the Excel upload, the DHIS2 import and the CLI all check alike: a value
  breaking a `refuse` rule is a conflict naming the rule and the values (the other lines are kept);
  a value breaking a `warn` rule is written and its violation recorded.
- `run` checks rules over units × periods and returns every violation, with no cap, recording them
  (new ones open, fixed ones resolved) so that the share resolved can be followed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.models import User
from dieuhanh.indicators import analytics
from dieuhanh.indicators import formula as f
from dieuhanh.indicators.models import DataSet, DataValue
from dieuhanh.indicators.periods import Period, parse
from dieuhanh.indicators.quality import grid
from dieuhanh.indicators.quality.models import Missing, Operator, Strictness, ValidationRule, Violation
from dieuhanh.indicators.services import (
    IndicatorError,
    audit_change,
    check_code,
    check_reads,
    formula_reads,
    formula_refused,
    locked_item,
    owner_of_change,
)
from dieuhanh.indicators.unitmap import unit_index
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area
from dieuhanh.vnformat import number

VALIDATION_RULE = _("validation rule")
NO_DATA_SET = _("no data set '%(code)s'")
OPERATOR_WORDS = {
    "==": "phải bằng",
    "!=": "phải khác",
    ">": "phải lớn hơn",
    ">=": "phải lớn hơn hoặc bằng",
    "<": "phải nhỏ hơn",
    "<=": "phải nhỏ hơn hoặc bằng",
}
RULE_FIELDS = (
    "name",
    "name_en",
    "instruction",
    "left",
    "operator",
    "right",
    "importance",
    "period_type",
    "strictness",
    "missing",
    "levels",
    "active",
)


def holds(left: float, operator: str, right: float) -> bool:
    close = math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9)
    if operator == "==":
        return close
    if operator == "!=":
        return not close
    if operator == ">":
        return left > right and not close
    if operator == ">=":
        return left >= right or close
    if operator == "<":
        return left < right and not close
    return left <= right or close


# Making rules


def rule_state(rule: ValidationRule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in RULE_FIELDS} | {
        "data_set": rule.data_set.code if rule.data_set else None,
        "units": sorted(u.ref for u in rule.units.all()),
        "owner_unit": rule.owner_unit.ref,
    }


def save_rule(
    *,
    actor: User | None,
    code: str,
    name: str,
    left: str,
    operator: str,
    right: str,
    name_en: str = "",
    instruction: str = "",
    importance: str = "medium",
    period_type: str = "monthly",
    strictness: str = "warn",
    missing: str = "skip_if_any_missing",
    data_set: str | None = None,
    levels: Iterable[int] = (),
    units: Iterable[Unit] = (),
    active: bool = True,
    owner_unit: Unit | None = None,
) -> ValidationRule:
    """Create or change a rule (admin of its owner unit, as for indicators); each side must parse and
    name only known elements, indicators or event counts owned at the rule's owner or above."""
    code = check_code(code)
    if operator not in Operator.values:
        raise IndicatorError(
            "operator",
            _("'%(operator)s' is not a comparison: %(operators)s")
            % {"operator": operator, "operators": ", ".join(Operator.values)},
        )
    for side, text in (("left", left), ("right", right)):
        try:
            analytics.check_formula(text)
        except f.FormulaError as exc:
            raise formula_refused(side, exc, text) from None
    chosen_set = None
    if data_set:
        chosen_set = DataSet.objects.filter(code=data_set).first()
        if chosen_set is None:
            raise IndicatorError("data_set", NO_DATA_SET % {"code": data_set})
    units = list(units)
    with transaction.atomic():
        current = locked_item(ValidationRule, code=code)
        near = units[0] if units else None
        owner = owner_of_change(
            actor=actor,
            what=VALIDATION_RULE,
            code=code,
            current=current.owner_unit if current else None,
            asked=owner_unit,
            near=near,
        )
        reads = formula_reads(left) | formula_reads(right)
        check_reads(VALIDATION_RULE, code, owner, reads, "left")
        if actor is not None and units and not all(actor.area("admin").contains(u) for u in units):
            raise IndicatorError(
                "units", _("the units the rule applies to are outside the units you administer"), 403
            )
        before = rule_state(current) if current else None
        rule = current or ValidationRule(code=code)
        values = {
            "name": name.strip(),
            "name_en": name_en,
            "instruction": instruction,
            "left": left.strip(),
            "operator": operator,
            "right": right.strip(),
            "importance": importance,
            "period_type": period_type,
            "strictness": strictness,
            "missing": missing,
            "levels": sorted({int(level) for level in levels}),
            "active": active,
        }
        for key, value in values.items():
            setattr(rule, key, value)
        rule.full_clean(exclude=["owner_unit", "data_set", "code"])
        rule.data_set, rule.owner_unit = chosen_set, owner
        rule.save()
        rule.units.set(units)
        audit_change(actor, "validationrule", code, before, rule_state(rule))
    return rule


# Checking one rule at one cell


@dataclass(frozen=True)
class Side:
    text: str
    tree: f.Node
    refs: frozenset[str]
    plain: bool
    linear: bool  # a sum or difference of figures and numbers (grid.linear)


@dataclass(frozen=True)
class Compiled:
    rule: ValidationRule
    left: Side
    right: Side
    units: tuple[tuple[str, str], ...]  # (edition, path) of each unit it is limited to
    refs: frozenset[str]

    @property
    def plain(self) -> bool:
        return self.left.plain and self.right.plain

    def applies_to(self, unit: Unit) -> bool:
        levels = self.rule.levels
        if levels and unit.level not in levels:
            return False
        return not self.units or any(
            unit.edition_id == ed and unit.path.startswith(path) for ed, path in self.units
        )


def compile_rule(rule: ValidationRule) -> Compiled:
    def side(text: str) -> Side:
        tree = grid.expand(text)
        return Side(text, tree, frozenset(f.refs(tree)), grid.plain(tree), grid.linear(tree))

    units = tuple((u.edition_id, u.path) for u in rule.units.all())
    left, right = side(rule.left), side(rule.right)
    return Compiled(rule, left, right, units, left.refs | right.refs)


@dataclass
class Finding:
    """One rule checked at one unit and period that does not hold."""

    rule: ValidationRule
    unit: Unit
    period: str
    left: float | None
    right: float | None

    def message(self, language: str | None = None) -> str:
        """What the rule's check found, in `language` (by default the reader's)."""
        rule = self.rule
        language = language or get_language()
        lv, rv = _shown(self.left), _shown(self.right)
        if language == "en":
            return (
                f"validation rule '{rule.name_en or rule.name}' ({rule.code}): "
                f"{rule.left} = {lv} must be {Operator(rule.operator).label} {rule.right} = {rv}"
            )
        return (
            f"vi phạm quy tắc kiểm tra '{rule.name}' ({rule.code}): "
            f"{rule.left} = {lv} {OPERATOR_WORDS[rule.operator]} {rule.right} = {rv}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.code,
            "ruleName": self.rule.name,
            "importance": self.rule.importance,
            "strictness": self.rule.strictness,
            "orgUnit": self.unit.ref,
            "orgUnitName": self.unit.name,
            "period": self.period,
            "leftSide": {"expression": self.rule.left, "value": self.left},
            "operator": self.rule.operator,
            "rightSide": {"expression": self.rule.right, "value": self.right},
            "message": self.message(),
        }


def _shown(value: float | None) -> str:
    return "(trống)" if value is None else number(value, "vi", 6)


def judge(
    rule: ValidationRule, left: float | None, right: float | None, present: int, needed: int
) -> bool | None:
    """True when broken, False when it holds, None when skipped for missing figures."""
    if rule.missing == Missing.SKIP_IF_ANY and present < needed:
        return None
    if rule.missing == Missing.SKIP_IF_ALL and present == 0:
        return None
    if left is None or right is None:
        return None
    return not holds(left, rule.operator, right)


# Checking at entry: the write path's one call


def screen(
    rows: dict[tuple, Any], summary: Any, *, actor: User | None, lines: dict[int, int | None] | None = None
) -> dict[tuple, Any]:
    """The rows (indicators.datavalues.Row, by cell) that pass the refusing rules; the refused ones go
    into the summary's conflicts, naming the rule and the values; warnings (and violations fixed by
    these values) are recorded. Called inside the import's transaction: a dry run records nothing."""
    if not rows:
        return rows
    from dieuhanh.indicators.datavalues import Conflict  # the caller's module (no import cycle)

    codes = {row.element.code for row in rows.values()}
    rules = [
        compile_rule(r)
        for r in ValidationRule.objects.filter(active=True).prefetch_related("units").order_by("code")
    ]
    rules = [c for c in rules if any(ref.split(".")[0] in codes for ref in c.refs)]
    if not rules:
        return rows
    kept = dict(rows)
    groups: dict[tuple[int, str], list[tuple]] = defaultdict(list)
    for cell, row in rows.items():
        groups[(row.unit.pk, row.period)].append(cell)
    stored = _StoredCells(rows, rules)
    refusing = [c for c in rules if c.rule.strictness == Strictness.REFUSE]
    changed = True
    while changed:  # a refused value no longer counts: the other rules see the cell without it
        changed = False
        for (_unit, pid), cells in groups.items():
            live = [kept[c] for c in cells if c in kept]
            if not live:
                continue
            for compiled in refusing:
                finding = _check_entry(compiled, live[0].unit, pid, stored, kept)
                if finding is None:
                    continue
                for row in live:
                    if row.cell in kept and _reads(compiled, row):
                        del kept[row.cell]
                        conflict = Conflict(row.index, "value", _shown(row.value), finding.message(), "E7630")
                        conflict.line = (lines or {}).get(row.index)
                        summary.conflicts.append(conflict)
                        changed = True
                live = [kept[c] for c in cells if c in kept]
    summary.conflicts.sort(key=lambda c: c.index)
    checked: dict[int, Checked] = {}
    for (_unit, pid), cells in groups.items():
        live = [kept[c] for c in cells if c in kept]
        if not live:
            continue
        for compiled in rules:
            if not any(_reads(compiled, row) for row in live):
                continue
            if not compiled.applies_to(live[0].unit) or parse(pid).type != compiled.rule.period_type:
                continue
            finding = _check_entry(compiled, live[0].unit, pid, stored, kept)
            if finding is not None and compiled.rule.strictness == Strictness.WARN:
                summary.warnings.append(finding.as_dict())
            done = checked.setdefault(compiled.rule.pk, Checked(compiled))
            key = (live[0].unit.pk, pid)
            done.keys.add(key)
            if finding is not None:
                done.findings[key] = finding
    track(list(checked.values()), actor=actor, cause="entry")
    return kept


def _reads(compiled: Compiled, row: Any) -> bool:
    code = row.element.code
    return any(ref == code or ref == f"{code}.{row.option}" for ref in compiled.refs) or (
        any(ref.split(".")[0] == code for ref in compiled.refs)
    )


class _StoredCells:
    """The stored figures at the cells the batch touches, and at the periods the rules shift to."""

    def __init__(self, rows: dict[tuple, Any], rules: list[Compiled]) -> None:
        self.values: dict[tuple[int, str], dict[tuple[str, str], float]] = defaultdict(dict)
        # The batch's rows by (unit, period): an import of many cells looks each one up, not through all.
        self.batch: dict[tuple[int, str], list[Any]] = defaultdict(list)
        for row in rows.values():
            self.batch[(row.unit.pk, row.period)].append(row)
        periods: set[str] = set()
        for row in rows.values():
            period = parse(row.period)
            periods.add(period.id)
            for compiled in rules:
                for side in (compiled.left, compiled.right):
                    for _name, chain in analytics.needs(side.tree):
                        if "parent" not in chain and "ytd" not in chain:
                            periods.add(analytics.shifted(period, chain).id)
        codes = {ref.split(".")[0] for c in rules for ref in c.refs}
        units = {row.unit.pk for row in rows.values()}
        query = DataValue.objects.filter(
            unit_id__in=units, period__in=periods, element__code__in=codes
        ).values_list("unit_id", "period", "element__code", "option", "value")
        for unit_id, pid, code, option, value in query:
            self.values[(unit_id, pid)][(code, option)] = value


@dataclass
class _EntryEnv:
    """formula.Env at one unit and period: what is stored there, the batch's values over it."""

    stored: _StoredCells
    kept: dict[tuple, Any]
    unit: Unit
    period: Period
    seen: list[str] = field(default_factory=list)

    def value(self, ref: str) -> float | None:
        code, _, option = ref.partition(".")
        cell = dict(self.stored.values.get((self.unit.pk, self.period.id), {}))
        for row in self.stored.batch.get((self.unit.pk, self.period.id), ()):
            if row.element.code == code and row.cell in self.kept:
                if row.value is None:
                    cell.pop((code, row.option), None)
                else:
                    cell[(code, row.option)] = row.value
        found = [v for (c, o), v in cell.items() if c == code and (not option or o == option)]
        if not found:
            return None
        self.seen.append(ref)
        return sum(found)

    def shifted(self, how: str) -> _EntryEnv | None:
        if how not in ("last_year", "previous"):
            return None  # ytd and share need the whole year or the parent: left to validation runs
        return _EntryEnv(self.stored, self.kept, self.unit, analytics.SHIFTS[how](self.period), self.seen)

    def target(self, ref: str) -> float | None:
        return None


def _check_entry(
    compiled: Compiled, unit: Unit, pid: str, stored: _StoredCells, kept: dict[tuple, Any]
) -> Finding | None:
    rule = compiled.rule
    if not compiled.applies_to(unit):
        return None
    period = parse(pid)
    if period.type != rule.period_type:
        return None
    zero = rule.missing != Missing.SKIP_IF_ANY
    env = _EntryEnv(stored, kept, unit, period)
    left = f.evaluate(compiled.left.tree, env)
    right = f.evaluate(compiled.right.tree, env)
    present = len(set(env.seen))
    if zero:
        zero_env = _ZeroEnv(env)
        left, right = f.evaluate(compiled.left.tree, zero_env), f.evaluate(compiled.right.tree, zero_env)
    broken = judge(rule, left, right, present, len(compiled.refs))
    return Finding(rule, unit, pid, left, right) if broken else None


@dataclass
class _ZeroEnv:
    inner: Any

    def value(self, ref: str) -> float | None:
        found = self.inner.value(ref)
        return 0.0 if found is None else found

    def shifted(self, how: str) -> _ZeroEnv | None:
        other = self.inner.shifted(how)
        return None if other is None else _ZeroEnv(other)

    def target(self, ref: str) -> float | None:
        return None


# Running rules over an area

Key = tuple[int, str]  # (unit id, period id)


@dataclass
class Checked:
    """What one rule's check found: the cells it could check, and those where it does not hold."""

    compiled: Compiled
    keys: set[Key] = field(default_factory=set)
    findings: dict[Key, Finding] = field(default_factory=dict)
    skipped: int = 0
    count: int | None = None  # cells checked, when `keys` was not kept (a run that records nothing)

    @property
    def checked(self) -> int:
        return len(self.keys) if self.count is None else self.count


@dataclass
class RunResult:
    findings: list[Finding]
    checked: int  # rule × unit × period cells where the rule could be checked
    skipped: int  # cells skipped for missing figures
    rules: list[ValidationRule]


def rules_named(data_set: str | None, codes: Iterable[str]) -> list[ValidationRule]:
    rules = ValidationRule.objects.filter(active=True).prefetch_related("units").select_related("data_set")
    codes = [c.strip().lower() for c in codes if c.strip()]
    if data_set:
        found = DataSet.objects.filter(code=data_set).first()
        if found is None:
            raise IndicatorError("dataSet", NO_DATA_SET % {"code": data_set}, 404)
        element_codes = set(found.elements.values_list("code", flat=True))
        chosen = [
            r
            for r in rules
            if r.data_set_id == found.pk
            or (r.data_set_id is None and {x.split(".")[0] for x in compile_rule(r).refs} <= element_codes)
        ]
    elif codes:
        chosen = list(rules.filter(code__in=codes))
        missing = sorted(set(codes) - {r.code for r in chosen})
        if missing:
            raise IndicatorError(
                "rules", _("no validation rule %(codes)s") % {"codes": ", ".join(missing)}, 404
            )
    else:
        raise IndicatorError("dataSet", _("choose a data set (dataSet) or a list of rules (rules)"))
    return sorted(chosen, key=lambda r: r.code)


def run(
    rules: list[ValidationRule],
    periods: list[Period],
    units: list[Unit],
    *,
    area: Area | None = None,
    actor: User | None = None,
    record: bool = True,
) -> RunResult:
    """Every violation of the rules at the units × periods (each rule at the periods of its type)."""
    compiled = [compile_rule(r) for r in rules]
    results: list[Checked] = []
    by_type: dict[str, list[Period]] = defaultdict(list)
    for period in periods:
        by_type[period.type].append(period)
    for ptype, chosen_periods in by_type.items():
        for_type = [c for c in compiled if c.rule.period_type == ptype]
        if not for_type:
            continue
        plain = [c for c in for_type if c.plain]
        shifted = [c for c in for_type if not c.plain]
        for group in _by_leafness(units):  # communes the stored way; units above them through analytics
            if plain:
                results += _run_plain(plain, chosen_periods, group, area, keep_keys=record)
            if shifted:
                results += _run_shifted(shifted, chosen_periods, group, area)
    if record:
        with transaction.atomic():
            track(results, actor=actor)
    findings = [f for r in results for f in r.findings.values()]
    findings.sort(key=lambda x: (x.rule.code, x.period, x.unit.path))
    checked = sum(r.checked for r in results)
    return RunResult(findings, checked, sum(r.skipped for r in results), rules)


def _by_leafness(units: list[Unit]) -> list[list[Unit]]:
    index = unit_index()
    leaves = [u for u in units if index.leaves.get(u.pk, [u.pk]) == [u.pk]]
    chosen = {u.pk for u in leaves}
    return [group for group in (leaves, [u for u in units if u.pk not in chosen]) if group]


def _broken(operator: str) -> Callable[[float, float], bool]:
    return lambda left, right: not holds(left, operator, right)


BROKEN: dict[str, Callable[[float, float], bool]] = {op: _broken(op) for op in Operator.values}
# The common comparisons without the tolerance's function call (the tolerance only matters near equality).
BROKEN["<="] = lambda left, right: left > right and not math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9)
BROKEN[">="] = lambda left, right: left < right and not math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9)


def _run_plain(
    compiled: list[Compiled],
    periods: list[Period],
    units: list[Unit],
    area: Area | None,
    *,
    keep_keys: bool = True,
) -> list[Checked]:
    refs = set().union(*(c.refs for c in compiled))
    stored, _others = grid.stored_refs(refs, units, periods)
    # Sums and differences of stored figures: judged a column at a time (numpy), the others cell by cell.
    whole = [c for c in compiled if c.refs and c.left.linear and c.right.linear and c.refs <= stored.keys()]
    out = _run_matrix(whole, periods, units, stored, keep_keys) if whole else []
    rest = [c for c in compiled if c not in whole]
    return out + (_run_cells(rest, periods, units, area) if rest else [])


def _run_cells(
    compiled: list[Compiled], periods: list[Period], units: list[Unit], area: Area | None
) -> list[Checked]:
    """Any plain rule, cell by cell (grid.compile_keyed)."""
    refs = set().union(*(c.refs for c in compiled))
    columns = grid.read(refs, units, periods, area).columns
    by_id = {u.pk: u for u in units}
    out = []
    for c in compiled:
        done = Checked(c)
        rule = c.rule
        missing = rule.missing
        cols = [columns.get(r, {}) for r in sorted(c.refs)]
        left = grid.compile_keyed(c.left.tree, columns, missing != Missing.SKIP_IF_ANY)
        right = grid.compile_keyed(c.right.tree, columns, missing != Missing.SKIP_IF_ANY)
        keys: set[Key] = set().union(*cols)  # nothing reported: not a cell to check (as DHIS2)
        if rule.levels or c.units:
            allowed = {pk for pk, u in by_id.items() if c.applies_to(u)}
            keys = {k for k in keys if k[0] in allowed}
        if missing == Missing.SKIP_IF_ANY and len(cols) > 1:
            every = keys.intersection(*cols)  # set operations, not a test per cell
            done.skipped += len(keys) - len(every)
            keys = every
        broken = BROKEN[rule.operator]
        checked = done.keys
        for key in keys:
            lv, rv = left(key), right(key)
            if lv is None or rv is None:
                done.skipped += 1
                continue
            checked.add(key)
            if broken(lv, rv):
                done.findings[key] = Finding(rule, by_id[key[0]], key[1], lv, rv)
        out.append(done)
    return out


def _broken_columns(operator: str, left: Any, right: Any) -> Any:
    """Where `left operator right` does not hold, column-wise, with `holds`'s tolerance."""
    close = np.abs(left - right) <= np.maximum(1e-9 * np.maximum(np.abs(left), np.abs(right)), 1e-9)
    if operator == "==":
        return ~close
    if operator == "!=":
        return close
    if operator == ">":
        return ~(left > right) | close
    if operator == ">=":
        return (left < right) & ~close
    if operator == "<":
        return ~(left < right) | close
    return (left > right) & ~close


def _run_matrix(
    compiled: list[Compiled],
    periods: list[Period],
    units: list[Unit],
    stored: dict[str, analytics.ElementRef],
    keep_keys: bool,
) -> list[Checked]:
    """Rules whose sides are sums of stored figures, over a matrix of cells (grid.cell_matrix): the
    same cells, skips and findings as the cell-by-cell way (tests/quality/test_rules.py compares)."""
    refs = set().union(*(c.refs for c in compiled))
    matrix = grid.cell_matrix({r: stored[r] for r in refs}, units, periods)
    by_id = {u.pk: u for u in units}
    out = []
    for c in compiled:
        done = Checked(c)
        rule = c.rule
        present = np.stack([~np.isnan(matrix.columns[r]) for r in sorted(c.refs)], axis=1)
        cells = present.any(axis=1)  # nothing reported: not a cell to check (as DHIS2)
        if rule.levels or c.units:
            allowed = [pk for pk, u in by_id.items() if c.applies_to(u)]
            cells &= np.isin(matrix.units, allowed)
        zero = rule.missing != Missing.SKIP_IF_ANY
        if not zero:
            every = cells & present.all(axis=1)
            done.skipped += int(np.count_nonzero(cells & ~every))
            cells = every
        with np.errstate(invalid="ignore", over="ignore"):
            left = np.broadcast_to(grid.vectorised(c.left.tree, matrix.columns, zero), cells.shape)
            right = np.broadcast_to(grid.vectorised(c.right.tree, matrix.columns, zero), cells.shape)
            figures = np.isfinite(left) & np.isfinite(right)  # an overflow is no figure (formula._finite)
            done.skipped += int(np.count_nonzero(cells & ~figures))
            cells &= figures
            broken = cells & _broken_columns(rule.operator, left, right)
        done.count = int(np.count_nonzero(cells))
        if keep_keys:
            done.keys = set(zip(matrix.units[cells].tolist(), matrix.periods[cells].tolist(), strict=True))
        for i in np.flatnonzero(broken).tolist():
            key = (int(matrix.units[i]), str(matrix.periods[i]))
            done.findings[key] = Finding(rule, by_id[key[0]], key[1], float(left[i]), float(right[i]))
        out.append(done)
    return out


def _run_shifted(
    compiled: list[Compiled], periods: list[Period], units: list[Unit], area: Area | None
) -> list[Checked]:
    """Rules with yoy, ytd, share, …: through analytics, which shifts and combines."""
    dims = []
    for c in compiled:
        for side, name in ((c.left, "left"), (c.right, "right")):
            dims.append(analytics.Dimension(f"{c.rule.code}:{name}", c.rule.code, "", 6, side.tree, None))
    answer = analytics.compute(dims, periods, units, area)
    out = []
    for c in compiled:
        done = Checked(c)
        zero = c.rule.missing != Missing.SKIP_IF_ANY
        for unit in units:
            if not c.applies_to(unit):
                continue
            for period in periods:
                key = (unit.pk, period.id)
                present = sum(1 for r in c.refs if analytics.as_cell(answer.cells.get(r, {}).get(key)))
                if not present:
                    continue
                env: Any = analytics.CellEnv(answer, unit.pk, period, analytics.Track())
                if zero:
                    env = _ZeroEnv(env)
                left = f.evaluate(c.left.tree, env)
                right = f.evaluate(c.right.tree, env)
                broken = judge(c.rule, left, right, present, len(c.refs))
                if broken is None:
                    done.skipped += 1
                    continue
                done.keys.add(key)
                if broken:
                    done.findings[key] = Finding(c.rule, unit, period.id, left, right)
        out.append(done)
    return out


# Keeping track of violations

violations_resolved = Signal()
"""Sent inside the transaction that resolves violations which had a task (`violations`, their rule
set; `actor`, who entered or ran, or None; `cause`: "entry" or "run"): the tasks live above this
layer (directives.quality_assignments closes them)."""


def track(results: list[Checked], *, actor: User | None, cause: str = "run") -> None:
    """Open (or reopen) a violation for each finding; resolve the open ones whose rule now holds."""
    if not any(r.keys for r in results):
        return
    now = timezone.now()
    by_rule: dict[int, Checked] = {}
    for r in results:  # a rule checked in parts (communes, then the units above them) is one
        merged = by_rule.setdefault(r.compiled.rule.pk, Checked(r.compiled))
        merged.keys |= r.keys
        merged.findings |= r.findings
    pids = {k[1] for r in results for k in r.keys}
    unit_ids = {k[0] for r in results for k in r.keys}
    existing_q = Violation.objects.filter(rule_id__in=list(by_rule), period__in=pids)
    if len(unit_ids) <= 2000:
        existing_q = existing_q.filter(unit_id__in=unit_ids)
    existing = {(v.rule_id, v.unit_id, v.period): v for v in existing_q}
    new, changed, fixed = [], [], []
    for rule_id, result in by_rule.items():
        for key, finding in result.findings.items():
            found = existing.get((rule_id, *key))
            if found is None:
                new.append(
                    Violation(
                        rule=finding.rule,
                        unit=finding.unit,
                        period=finding.period,
                        left_value=finding.left,
                        right_value=finding.right,
                        last_seen=now,
                    )
                )
            else:
                found.left_value, found.right_value, found.last_seen = finding.left, finding.right, now
                found.state, found.resolved_at, found.resolved_by = Violation.State.OPEN, None, None
                changed.append(found)
    for (rule_id, unit_id, pid), found in existing.items():
        result = by_rule[rule_id]
        key = (unit_id, pid)
        if found.state == Violation.State.OPEN and key in result.keys and key not in result.findings:
            found.state, found.resolved_at, found.resolved_by = Violation.State.RESOLVED, now, actor
            found.last_seen = now
            changed.append(found)
            if found.task_id is not None:
                found.rule = result.compiled.rule
                fixed.append(found)
    Violation.objects.bulk_create(new, batch_size=1000)
    Violation.objects.bulk_update(
        changed,
        ["left_value", "right_value", "last_seen", "state", "resolved_at", "resolved_by"],
        batch_size=1000,
    )
    if fixed:
        violations_resolved.send(sender=Violation, violations=fixed, actor=actor, cause=cause)


def resolution(violations: Any) -> dict[str, Any]:
    """How many violations were found and how many of them were fixed since (the share resolved)."""
    total = violations.count()
    resolved = violations.filter(state=Violation.State.RESOLVED).count()
    with_task = violations.filter(task_id__isnull=False).count()
    return {
        "total": total,
        "open": total - resolved,
        "resolved": resolved,
        "resolvedShare": round(resolved / total * 100, 2) if total else None,
        "withTask": with_task,
    }


def violations_in(
    area: Area, *, rule: str | None = None, unit: Unit | None = None, state: str | None = None
) -> Any:
    rows: Any = Violation.objects.within(area).select_related("rule", "unit")
    if rule:
        rows = rows.filter(rule__code=rule)
    if unit is not None:
        rows = rows.filter(Q(unit__edition_id=unit.edition_id, unit__path__under=unit.path))
    if state:
        rows = rows.filter(state=state)
    return rows
