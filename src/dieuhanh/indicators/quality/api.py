"""The data quality API: validation rules, validation runs, violations and their resolution, outliers."""

from __future__ import annotations

import csv
import io
from typing import Any, Literal

import msgspec
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Schema, Status
from pydantic import Field

from dieuhanh.accounts.guards import caller
from dieuhanh.accounts.models import User
from dieuhanh.indicators import analytics
from dieuhanh.indicators.periods import Period, PeriodError, parse
from dieuhanh.indicators.quality import outliers, rules
from dieuhanh.indicators.quality.models import ValidationRule, Violation
from dieuhanh.indicators.services import IndicatorError, units_named
from dieuhanh.sheets import csv_cell
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import area_aware
from dieuhanh.units.services import get_unit, unit_in_area

router = Router(tags=["data quality"])


def _unit(user: User, ref: str, field: str = "unit") -> Unit:
    return unit_in_area(ref, user.area(), field=field)


def _periods(items: list[str], field: str = "periods") -> list[Period]:
    out = []
    for pid in items:
        try:
            out.append(parse(pid))
        except PeriodError as exc:
            raise IndicatorError(field, exc.message) from None
    if not out:
        raise IndicatorError(field, _('name at least one period, e.g. ["202401", "202402"]'))
    return sorted(set(out))


# Rules


class RuleIn(Schema):
    code: str
    name: str
    name_en: str = ""
    instruction: str = ""
    left: str = Field(
        ..., description="a formula: #{element}, #{element.option}, #{indicator}, numbers, + - * /"
    )
    operator: Literal["==", "!=", ">", ">=", "<", "<="]
    right: str
    importance: Literal["high", "medium", "low"] = "medium"
    period_type: Literal["daily", "weekly", "monthly", "quarterly", "sixmonthly", "yearly"] = "monthly"
    strictness: Literal["warn", "refuse"] = "warn"
    missing: Literal["skip_if_any_missing", "skip_if_all_missing", "never_skip"] = "skip_if_any_missing"
    data_set: str | None = None
    levels: list[int] = Field([], description="unit levels (2 = communes on VN-2025); empty: all")
    units: list[str] = Field([], description="EDITION:CODE of the units (and subtrees) it is limited to")
    active: bool = True
    owner_unit: str | None = None


class RuleOut(RuleIn):
    pass


def _rule_out(rule: ValidationRule) -> dict[str, Any]:
    state = rules.rule_state(rule)
    return {"code": rule.code, **state}


@router.get("/validation/rules", response=list[RuleOut], summary="Validation rules")
@area_aware  # metadata only
def list_rules(request: HttpRequest):
    found = ValidationRule.objects.select_related("data_set", "owner_unit").prefetch_related("units")
    return [_rule_out(r) for r in found]


@router.post(
    "/validation/rules", response={201: RuleOut}, summary="Create or update a validation rule (admin)"
)
@area_aware
def post_rule(request: HttpRequest, body: RuleIn):
    user = caller(request)
    admin = user.area("admin")
    if not admin:
        raise IndicatorError(None, _("managing validation rules needs the admin role"), 403)
    units = [_unit(user, ref, "units") for ref in body.units]
    owner = _unit(user, body.owner_unit, "owner_unit") if body.owner_unit else None
    fields = body.dict(exclude={"units", "owner_unit"})
    rule = rules.save_rule(actor=user, units=units, owner_unit=owner, **fields)
    return Status(201, _rule_out(rule))


# Runs


class RunIn(Schema):
    data_set: str | None = Field(None, alias="dataSet", description="every rule of this data set")
    rules: list[str] = Field([], description="or these rules, by code")
    periods: list[str] = Field(..., description='DHIS2 periods: ["202401", …, "202412"]')
    unit: str | None = Field(None, description="EDITION:CODE; default: your own unit")
    children: bool = Field(True, description="also every unit below it")
    record: bool = Field(True, description="keep the violations found (and resolve those fixed)")


@router.post(
    "/validation/run",
    response=dict[str, Any],
    summary="Run validation rules over an area and periods: every violation, with no cap",
    openapi_extra={"responses": {200: {"content": {"application/json": {}, "text/csv": {}}}}},
)
@area_aware
def post_run(request: HttpRequest, body: RunIn, format: Literal["json", "csv"] = "json"):
    user = caller(request)
    area = user.area()
    chosen = rules.rules_named(body.data_set, body.rules)
    periods = _periods(body.periods)
    if body.unit:
        root = _unit(user, body.unit)
    else:
        roots = _own_roots(user)
        if len(roots) != 1:
            raise IndicatorError("unit", _("you have several units: name the unit to check (EDITION:CODE)"))
        root = roots[0]
    units = [root]
    if body.children:
        units = list(Unit.objects.under(root).within(area).order_by("path"))
    levels = {lv for r in chosen for lv in r.levels} if all(r.levels for r in chosen) else None
    if levels is not None:
        units = [u for u in units if u.level in levels]
    if len(units) * len(periods) > 2_000_000:
        raise IndicatorError("periods", _("too many cells (units × periods); split the run"))
    result = rules.run(chosen, periods, units, area=area, actor=user, record=body.record)
    violations = [v.as_dict() for v in result.findings]
    if format == "csv":
        return _csv(violations)
    answer = {
        "rules": [r.code for r in result.rules],
        "periods": [p.id for p in periods],
        "orgUnit": root.ref,
        "units": len(units),
        "checked": result.checked,
        "skipped": result.skipped,
        "violationCount": len(violations),
        "violations": violations,
    }
    return HttpResponse(msgspec.json.encode(answer), content_type="application/json")


def _own_roots(user: User) -> list[Unit]:
    area = user.area()
    if area.everything:
        return [get_unit("VN-2025:VN")]
    return list({g.unit_id: g.unit for g in user.held()}.values())  # held() is sorted by path


CSV_FIELDS = (
    "rule",
    "ruleName",
    "importance",
    "strictness",
    "orgUnit",
    "orgUnitName",
    "period",
    "left",
    "operator",
    "right",
    "message",
)


def _csv(violations: list[dict[str, Any]]) -> HttpResponse:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for v in violations:
        row = {**v, "left": v["leftSide"]["value"], "right": v["rightSide"]["value"]}
        writer.writerow([csv_cell(row[k]) for k in CSV_FIELDS])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="violations.csv"'
    return response


# Violations


class ViolationsQuery(Schema):
    unit: str | None = None
    rule: str | None = None
    state: Literal["open", "resolved"] | None = None
    limit: int = Field(1000, ge=1, le=100_000)
    offset: int = Field(0, ge=0, le=10_000_000)


@router.get(
    "/validation/violations",
    response=dict[str, Any],
    summary="Violations kept inside your area, with the share resolved",
)
@area_aware
def get_violations(request: HttpRequest, q: Query[ViolationsQuery]):
    user = caller(request)
    unit = _unit(user, q.unit) if q.unit else None
    rows = rules.violations_in(user.area(), rule=q.rule, unit=unit)
    stats = rules.resolution(rows)
    if q.state:
        rows = rows.filter(state=q.state)
    total = rows.count()
    page = rows.order_by("rule__code", "period", "unit__path")[q.offset : q.offset + q.limit]
    return {
        **stats,
        "count": total,
        "offset": q.offset,
        "next": q.offset + q.limit if q.offset + q.limit < total else None,
        "violations": [violation_out(v) for v in page],
    }


def violation_out(v: Violation) -> dict[str, Any]:
    finding = rules.Finding(v.rule, v.unit, v.period, v.left_value, v.right_value)
    return {
        "id": v.pk,
        **finding.as_dict(),
        "state": v.state,
        "firstSeen": v.first_seen.isoformat(),
        "lastSeen": v.last_seen.isoformat(),
        "resolvedAt": v.resolved_at.isoformat() if v.resolved_at else None,
        "task": v.task_id,
    }


# Outliers


class OutliersQuery(Schema):
    dx: str = Field(
        ..., description="data elements (code or code.option), indicators or ev.kind…, ';'-separated"
    )
    pe: str = Field(..., description="the periods to judge, ';'-separated, of one type: 202401;202402")
    ou: str = Field("USER_ORGUNIT", description="units (EDITION:CODE or code), LEVEL-n, USER_ORGUNIT, …")
    edition: str = "VN-2025"
    algorithm: Literal["MOD_Z_SCORE", "MIN_MAX", "SEASONAL"] = "MOD_Z_SCORE"
    threshold: float = Field(outliers.DEFAULT_THRESHOLD, gt=0, le=100)
    history: int = Field(24, ge=0, le=120, description="periods of history before the first judged one")


@router.get("/outliers", response=dict[str, Any], summary="Outliers among data values and warehouse counts")
@area_aware
def get_outliers(request: HttpRequest, q: Query[OutliersQuery]):
    user = caller(request)
    area = user.area()
    roots = (
        _own_roots(user) if area.everything else [u for u in _own_roots(user) if u.edition_id == q.edition]
    )
    items = [i.strip() for i in q.ou.split(";") if i.strip()]
    units = analytics.units_asked(units_named(items, edition=q.edition, area=area, roots=roots))
    periods = analytics.periods_of(q.pe)
    refs = [d.strip().lower() for d in q.dx.split(";") if d.strip()]
    if not refs:
        raise IndicatorError("dx", _("name at least one data element"))
    if len(refs) * len(units) * len(periods) > 2_000_000:
        raise IndicatorError("ou", _("too many cells; ask for fewer units or periods"))
    found, judged = outliers.detect(  # OutlierError: 422
        refs, periods, units, algorithm=q.algorithm, threshold=q.threshold, history=q.history, area=area
    )
    answer = {
        "algorithm": q.algorithm,
        "threshold": q.threshold,
        "judged": judged,
        "count": len(found),
        "outliers": [o.as_dict() for o in found],
    }
    return HttpResponse(msgspec.json.encode(answer), content_type="application/json")
