"""Indicators: the verbs that change metadata (each audited), who may write values, completeness,
and the units an analytics question names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import router, transaction
from django.db.models import Min, Model, Q
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.models import Role, User
from dieuhanh.accounts.services import audit
from dieuhanh.errors import DomainError, lazy_format
from dieuhanh.indicators import analytics, versions
from dieuhanh.indicators.analytics import AnalyticsError, check_formula
from dieuhanh.indicators.formula import FormulaError, refs
from dieuhanh.indicators.formula import parse as parse_formula
from dieuhanh.indicators.models import (
    Aggregation,
    DataElement,
    DataSet,
    DataValue,
    Indicator,
    Target,
    ValueType,
)
from dieuhanh.indicators.periods import Period, PeriodError, parse
from dieuhanh.indicators.unitmap import KeptPerIndex
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area
from dieuhanh.units.services import CURRENT_EDITION, get_unit, unit_in_area
from dieuhanh.vnformat import VN_TZ


class IndicatorError(DomainError):
    """A refused change; `field` names the input at fault, `status` the HTTP status to answer."""


# What is refused, in the reader's language (the words a refusal names the item with).
NEEDS_ADMIN = _("managing the indicator catalogue needs the admin role")
NOT_YOURS = _("%(ref)s is outside the units you administer")
DATA_ELEMENT = _("data element")
INDICATOR = _("indicator")
DATA_SET = _("data set")
TARGET = _("target")


def check_code(code: str) -> str:
    """A metadata code: lower-cased, of ASCII letters, digits and _ (IndicatorError on 'code' else)."""
    code = code.strip().lower()
    if not code or not all(c.isascii() and (c.isalnum() or c == "_") for c in code):
        raise IndicatorError(
            "code", _("'%(code)s' is not a code: use lower-case letters, digits and _") % {"code": code}
        )
    return code


def _choice(field: str, value: str, choices: list[str]) -> str:
    if value not in choices:
        raise IndicatorError(
            field,
            _("'%(value)s' is not one of: %(choices)s") % {"value": value, "choices": ", ".join(choices)},
        )
    return value


# Who owns metadata
#
# Every piece of metadata (element, data set, indicator, target, report definition) belongs to a unit.
# Only an admin whose admin grants cover that unit (the nation's admins cover all) changes or deletes
# it; a lower admin may create metadata, owned by their own unit, but never overwrite what is owned
# above or beside them. A system actor (None: the CLI, the demo, migrations) acts as the nation.
# An owner moves only upwards (the nation taking over a province's element), and metadata reads only
# metadata owned at its own unit or above it: else a ward's admin could change a national figure
# through an element or indicator the national formula reads.

NATIONAL_OWNER = "VN-2025:VN"


def national_owner() -> Unit:
    return Unit.objects.ref(NATIONAL_OWNER)


def may_manage(actor: User | None, owner: Unit) -> bool:
    return actor is None or actor.area(Role.ADMIN).contains(owner)


def at_or_above(upper: Unit, lower: Unit) -> bool:
    """`upper` is `lower` or one of its ancestors (the nation is above every unit of every map)."""
    return Area.of(upper).contains(lower)


def owner_of_change(
    *,
    actor: User | None,
    what: str | Promise,
    code: str,
    current: Unit | None,
    asked: Unit | None,
    near: Unit | None = None,
    field: str = "code",
) -> Unit:
    """The owner a create or update by `actor` leaves on the item, or IndicatorError: 403 for an item
    or an owner the actor does not administer (saying nothing of who owns it), 422 for a move down."""
    if current is not None and not may_manage(actor, current):
        raise IndicatorError(
            field,
            _(
                "you may not change the %(what)s '%(code)s': only admins of the unit that owns it "
                "or of a unit above it may"
            )
            % {"what": what, "code": code},
            403,
        )
    if asked is None:
        return current or _default_owner(actor, near)
    if not may_manage(actor, asked):
        raise IndicatorError("owner_unit", NOT_YOURS % {"ref": asked.ref}, 403)
    if current is not None and not at_or_above(asked, current):
        raise IndicatorError(
            "owner_unit",
            _("the owner unit of the %(what)s '%(code)s' moves only upwards, not down")
            % {"what": what, "code": code},
        )
    return asked


def _default_owner(actor: User | None, near: Unit | None) -> Unit:
    """The nation for a national admin; else the actor's admin unit (the highest one above `near`)."""
    if actor is None or actor.area(Role.ADMIN).everything:
        return national_owner()
    units = [
        g.unit for g in actor.held() if g.role == Role.ADMIN and (near is None or at_or_above(g.unit, near))
    ]
    if not units:
        raise IndicatorError("owner_unit", NEEDS_ADMIN, 403)
    if near is None and len(units) > 1:
        raise IndicatorError(
            "owner_unit", _("you administer several units: name the owner unit (owner_unit, EDITION:CODE)")
        )
    return min(units, key=lambda u: u.level)


def check_reads(what: str | Promise, code: str, owner: Unit, reads: dict[str, Unit], field: str) -> None:
    """Refuses metadata owned at `owner` that reads metadata (`reads`: name → its owner) owned below or
    beside it."""
    lower = sorted(name for name, by in reads.items() if not at_or_above(by, owner))
    if lower:
        raise IndicatorError(
            field,
            _(
                "the %(what)s '%(code)s' may not use %(names)s: only what the unit that owns it "
                "or a unit above it owns may be used"
            )
            % {"what": what, "code": code, "names": ", ".join(lower)},
        )


def audit_change(actor: User | None, kind: str, target: str, before: dict | None, after: dict | None) -> None:
    """One audit row per change of metadata, with the state before and after; nothing changed, no row."""
    if before == after:
        return
    action = "create" if before is None else "delete" if after is None else "update"
    audit(actor, f"{kind}.{action}", target, before=before, after=after)


ELEMENT_FIELDS = (
    "name",
    "name_en",
    "unit",
    "value_type",
    "aggregation",
    "period_type",
    "options",
    "description",
)
INDICATOR_FIELDS = ("name", "name_en", "formula", "unit", "decimals", "description")
DATA_SET_FIELDS = ("name", "name_en", "period_type", "unit_kind", "due_day")


def _state(item: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: getattr(item, f) for f in fields} | {"owner_unit": item.owner_unit.ref}


def element_state(element: DataElement) -> dict[str, Any]:
    return _state(element, ELEMENT_FIELDS)


def indicator_state(indicator: Indicator) -> dict[str, Any]:
    return _state(indicator, INDICATOR_FIELDS)


def data_set_state(data_set: DataSet) -> dict[str, Any]:
    return _state(data_set, DATA_SET_FIELDS) | {
        "elements": sorted(data_set.elements.values_list("code", flat=True))
    }


def target_state(target: Target) -> dict[str, Any]:
    return {"value": target.value, "comment": target.comment, "owner_unit": target.owner_unit.ref}


def _target_key(target: Target) -> str:
    return f"{target.indicator.code}@{target.unit.ref}/{target.period}"


def locked_item(model: type[Model], **key: Any) -> Any:
    """The item as it is, locked until the change commits (not its owner unit's row)."""
    rows = model._default_manager.select_for_update(of=("self",)).select_related("owner_unit")
    return rows.filter(**key).first()


def _apply(item: Any, values: dict[str, Any]) -> None:
    for name, value in values.items():
        item._meta.get_field(name)  # an unknown field is an error, as update_or_create made it
        setattr(item, name, value)


def _write(
    actor: User | None,
    item: Any,
    found: Any,
    values: dict[str, Any],
    kind: str,
    key: str,
    state: Callable[[Any], dict[str, Any]],
    then: Callable[[Any], object] | None = None,
) -> Any:
    """Save one piece of metadata (`found`, or the new `item`) with `values`, then anything `then` adds
    (a data set's elements), audited with its state before and after."""
    before = state(found) if found else None
    _apply(item, values)
    item.save()
    if then is not None:
        then(item)
    audit_change(actor, kind, key, before, state(item))
    return item


@transaction.atomic
def save_data_element(
    *, actor: User | None, code: str, name: str, owner_unit: Unit | None = None, **fields: Any
) -> DataElement:
    """Create or update a data element by code (owner rules above)."""
    code = check_code(code)
    if "aggregation" in fields:
        _choice("aggregation", fields["aggregation"], Aggregation.values)
    if "value_type" in fields:
        _choice("value_type", fields["value_type"], ValueType.values)
    for option in fields.get("options") or []:
        check_code(option.get("code", ""))
    found = locked_item(DataElement, code=code)
    what = DATA_ELEMENT
    owner = owner_of_change(
        actor=actor, what=what, code=code, current=found and found.owner_unit, asked=owner_unit
    )
    # Formulas read #{code} as this element rather than as the indicator of that code: a new element
    # must not take over what an indicator owned above it meant.
    shadowed = Indicator.objects.filter(code=code).select_related("owner_unit").first()
    if found is None and shadowed is not None and not at_or_above(owner, shadowed.owner_unit):
        raise IndicatorError(
            "code",
            _(
                "the code '%(code)s' may not be used: it is the code of an indicator owned above; "
                "choose another"
            )
            % {"code": code},
            403,
        )
    values = {"name": name, **fields, "owner_unit": owner}
    return _write(actor, found or DataElement(code=code), found, values, "dataelement", code, element_state)


def formula_reads(formula: str) -> dict[str, Unit]:
    """The elements and indicators a formula reads, each with its owner (warehouse counts have none)."""
    names = {ref.split(".")[0] for ref in refs(parse_formula(formula)) if not ref.startswith("ev.")}
    owners = {
        e.code: e.owner_unit for e in DataElement.objects.filter(code__in=names).select_related("owner_unit")
    }
    for i in Indicator.objects.filter(code__in=names - owners.keys()).select_related("owner_unit"):
        owners[i.code] = i.owner_unit
    return owners


@transaction.atomic
def save_indicator(
    *,
    actor: User | None,
    code: str,
    name: str,
    formula: str,
    owner_unit: Unit | None = None,
    **fields: Any,
) -> Indicator:
    """Create or update an indicator by code; a formula that cannot be read or names an unknown
    figure is refused with the position (IndicatorError on field 'formula')."""
    code = check_code(code)
    try:
        check_formula(formula)
    except FormulaError as exc:
        raise formula_refused("formula", exc, formula) from None
    found = locked_item(Indicator, code=code)
    what = INDICATOR
    owner = owner_of_change(
        actor=actor, what=what, code=code, current=found and found.owner_unit, asked=owner_unit
    )
    check_reads(what, code, owner, formula_reads(formula), "formula")
    values = {"name": name, "formula": formula, **fields, "owner_unit": owner}
    return _write(actor, found or Indicator(code=code), found, values, "indicator", code, indicator_state)


@transaction.atomic
def save_target(
    *,
    actor: User | None,
    indicator: str,
    unit: Unit,
    period: str,
    value: float,
    comment: str = "",
    owner_unit: Unit | None = None,
) -> Target:
    """Set a target; only for a unit inside the actor's admin grants, and never over one owned above."""
    found_indicator = Indicator.objects.filter(code=indicator).first()
    if found_indicator is None:
        raise IndicatorError("indicator", _("no indicator '%(code)s'") % {"code": indicator}, 404)
    try:
        pid = parse(period).id
    except PeriodError as exc:
        raise IndicatorError("period", exc.message) from None
    if not may_manage(actor, unit):
        raise IndicatorError("unit", NOT_YOURS % {"ref": unit.ref}, 403)
    found = locked_item(Target, indicator=found_indicator, unit=unit, period=pid)
    key = f"{indicator}@{unit.ref}/{pid}"
    owner = owner_of_change(
        actor=actor,
        what=TARGET,
        code=key,
        current=found and found.owner_unit,
        asked=owner_unit,
        near=unit,
        field="unit",
    )
    target = found or Target(indicator=found_indicator, unit=unit, period=pid)
    values = {"value": value, "comment": comment, "owner_unit": owner}
    return _write(actor, target, found, values, "target", key, target_state)


@transaction.atomic
def save_data_set(
    *,
    actor: User | None,
    code: str,
    name: str,
    elements: list[str],
    owner_unit: Unit | None = None,
    **fields: Any,
) -> DataSet:
    code = check_code(code)
    found_elements = {
        e.code: e for e in DataElement.objects.filter(code__in=elements).select_related("owner_unit")
    }
    unknown = [c for c in elements if c not in found_elements]
    if unknown:
        raise IndicatorError("elements", _("no data element %(codes)s") % {"codes": ", ".join(unknown)})
    found = locked_item(DataSet, code=code)
    what = DATA_SET
    owner = owner_of_change(
        actor=actor, what=what, code=code, current=found and found.owner_unit, asked=owner_unit
    )
    check_reads(what, code, owner, {c: e.owner_unit for c, e in found_elements.items()}, "elements")
    values = {"name": name, **fields, "owner_unit": owner}
    members = [found_elements[c] for c in elements]
    return _write(
        actor,
        found or DataSet(code=code),
        found,
        values,
        "dataset",
        code,
        data_set_state,
        then=lambda data_set: data_set.elements.set(members),
    )


# Deleting metadata: the owner's admins (or those above) only, audited with what was there.


def formula_refused(field: str, exc: FormulaError, text: str) -> IndicatorError:
    """A formula that cannot be read, refused on `field`: why and where, and the line with a caret."""
    return IndicatorError(
        field, lazy_format("%(why)s\n%(pointer)s", why=exc.message, pointer=exc.pointer(text))
    )


def _refuse_delete(what: str | Promise, code: str) -> IndicatorError:
    return IndicatorError(
        "code",
        _(
            "you may not delete the %(what)s '%(code)s': only admins of the unit that owns it "
            "or of a unit above it may"
        )
        % {"what": what, "code": code},
        403,
    )


def _delete(actor: User | None, item: Any, what: str | Promise, kind: str, key: str, state: Any) -> None:
    """Delete one piece of metadata: only an admin of its owner unit or above; audited with its state."""
    if not may_manage(actor, item.owner_unit):
        raise _refuse_delete(what, key)
    before = state(item)
    item.delete()
    audit_change(actor, kind, key, before, None)


@transaction.atomic
def delete_data_element(*, actor: User | None, element: DataElement) -> None:
    _delete(actor, element, DATA_ELEMENT, "dataelement", element.code, element_state)


@transaction.atomic
def delete_indicator(*, actor: User | None, indicator: Indicator) -> None:
    _delete(actor, indicator, INDICATOR, "indicator", indicator.code, indicator_state)


@transaction.atomic
def delete_data_set(*, actor: User | None, data_set: DataSet) -> None:
    _delete(actor, data_set, DATA_SET, "dataset", data_set.code, data_set_state)


@transaction.atomic
def delete_target(*, actor: User | None, target: Target) -> None:
    _delete(actor, target, TARGET, "target", _target_key(target), target_state)


# Who may write values


WRITER_ROLES = (Role.OPERATOR, Role.ADMIN, Role.ENTERPRISE)  # an enterprise enters its own reports


def writable_area(user: User) -> Area:
    """Where the user may enter data values: their operator and admin grants."""
    return Area.union(user.area(role) for role in WRITER_ROLES)


# Completeness


@dataclass(frozen=True)
class Report:
    unit: Unit
    reported_at: datetime | None
    on_time: bool


def due_date(data_set: DataSet, period: str) -> date:
    return parse(period).end + timedelta(days=data_set.due_day)


def completeness(data_set: DataSet, period: str, units: list[Unit]) -> list[Report]:
    """Per unit expected to report: when it first sent a value of the set for the period, on time or late."""
    due = due_date(data_set, period)
    first = dict(
        DataValue.objects.filter(data_set_q(data_set), period=period, unit__in=units)
        .values_list("unit_id")
        .annotate(at=Min("created_at"))
        .order_by()
    )
    return [
        Report(u, first.get(u.pk), u.pk in first and first[u.pk].astimezone(VN_TZ).date() <= due)
        for u in units
    ]


def data_set_q(data_set: DataSet) -> Q:
    return Q(element__in=data_set.elements.all())


# The units a question names


def units_named(items: list[str], *, edition: str, area: Area, roots: list[Unit]) -> list[Unit]:
    """DHIS2's ou: unit refs or codes, LEVEL-n (the units of that level inside the named ones, or inside
    the caller's area), USER_ORGUNIT and USER_ORGUNIT_CHILDREN; every unit inside the caller's area."""
    named, levels = [], []
    for item in items:
        if item.upper().startswith("LEVEL-"):
            levels.append(_level(item))
        elif item.upper() == "USER_ORGUNIT":
            named += roots
        elif item.upper() == "USER_ORGUNIT_CHILDREN":
            named += list(Unit.objects.filter(parent__in=roots).order_by("code"))
        else:
            named.append(unit_in_area(item, area, field="ou", edition=edition))
    if levels:
        bounds = [u for u in named] or roots
        named = _at_levels(bounds, levels, edition, area)
    return list(dict.fromkeys(named))


def _level(item: str) -> int:
    try:
        return int(item[6:])
    except ValueError:
        raise AnalyticsError(
            "ou", _("'%(item)s' is not LEVEL-n (e.g. LEVEL-2 for communes on VN-2025)") % {"item": item}
        ) from None


# LEVEL-n's units per bounds, levels and area, kept while the units are unchanged. A national question
# names 3,321 communes; once its answer and JSON were kept, making them into model instances again was
# most of the analytics route's time (30–57 ms of 44–83 ms per request at 3M, issue 18).
_LEVELS: KeptPerIndex[list[Unit]] = KeptPerIndex()


def _at_levels(bounds: list[Unit], levels: list[int], edition: str, area: Area) -> list[Unit]:
    # In a transaction of the code's own the index is kept by counts, blind to a rename: read anew.
    if versions.in_transaction(router.db_for_read(Unit)):
        return _read_levels(bounds, levels, edition, area)
    key = (tuple(u.pk for u in bounds), tuple(levels), edition, area)
    return list(_LEVELS.get(key, lambda _: _read_levels(bounds, levels, edition, area)))


def warm_national_levels() -> None:
    """LEVEL-1 and LEVEL-2 of the current map for a national caller (its provinces and its 3,321
    communes), read into the kept lists as a national analytics question reads them: a web worker's
    start (asgi.warm) makes them, so that its first national question does not (about 100 ms of
    a new worker's first request, the units made into model instances). A map without its nation yet
    (units not loaded) has nothing to warm."""
    try:
        nation = get_unit(f"{CURRENT_EDITION}:VN")  # the root a national caller's question names
    except Unit.DoesNotExist:
        return
    for level in ("LEVEL-1", "LEVEL-2"):  # the area a national grant's is (every map): the same key
        units_named([level], edition=CURRENT_EDITION, area=Area.of(nation), roots=[nation])


def _read_levels(bounds: list[Unit], levels: list[int], edition: str, area: Area) -> list[Unit]:
    out: list[Unit] = []
    for bound in bounds:
        subtree = Unit.objects.filter(edition_id=edition, level__in=levels).within(area)
        if bound.kind != "nation" or bound.edition_id == edition:
            subtree = subtree.filter(path__under=bound.path, edition_id=bound.edition_id)
        out += subtree.order_by("path")
    return out


# A unit's latest figures (the unit page)


def unit_figures(unit: Unit, *, limit: int = 20, language: str = "vi") -> list[dict[str, Any]]:
    """The data elements with values in the unit's area (either map), each at its latest period,
    latest first."""
    here = DataValue.objects.filter(unit__edition_id=unit.edition_id, unit__path__under=unit.path)
    elsewhere = DataValue.objects.exclude(unit__edition_id=unit.edition_id)
    if unit.kind != "nation":  # the other map's national figures do not carry down to a part of it
        elsewhere = elsewhere.exclude(unit__kind="nation")
    latest: dict[str, Period] = {}
    for code, pid in (here | elsewhere).values_list("element__code", "period").distinct():
        period = parse(pid)
        if code not in latest or _recency(period) > _recency(latest[code]):
            latest[code] = period
    by_period: dict[Period, list[str]] = {}
    for code, period in latest.items():
        by_period.setdefault(period, []).append(code)
    rows = []
    for period in sorted(by_period, key=_recency, reverse=True):
        dims = [analytics.dimension(code) for code in sorted(by_period[period])]
        rows += [
            {**r, "name": d.name}
            for d in dims
            for r in analytics.rows([d], [period], [unit], language=language)
        ]
        if len(rows) >= limit:
            break
    return rows[:limit]


def _recency(period: Period) -> tuple[date, int]:
    """Later first; of two ending the same day, the longer (8 months to date before August)."""
    return (period.end, (period.end - period.start).days)
