"""The indicators API: metadata, data values in DHIS2's forms, Excel templates, completeness, analytics."""

from __future__ import annotations

import json
from typing import Any, Literal

import msgspec
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Schema, Status
from pydantic import Field

from dieuhanh.accounts.guards import caller
from dieuhanh.accounts.models import User
from dieuhanh.errors import DomainError
from dieuhanh.indicators import analytics, datavalues, excel, services
from dieuhanh.indicators.approval.models import DataSetApproval
from dieuhanh.indicators.approval.services import approval_kind, approved_units
from dieuhanh.indicators.models import DataElement, DataSet, DataValue, Indicator, Target
from dieuhanh.indicators.periods import PeriodError, parse
from dieuhanh.replica import replica_reads
from dieuhanh.units.api import EditionCode
from dieuhanh.units.models import Edition, Unit
from dieuhanh.units.scoping import area_aware, metadata
from dieuhanh.units.services import get_unit, unit_in_area
from dieuhanh.vnformat import Moment

router = Router(tags=["indicators"])

JSON_OR_CSV = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}
XLSX_BODY = {
    "requestBody": {
        "required": True,
        "content": {excel.XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _admin(user: User) -> None:
    if not user.area("admin"):
        raise services.IndicatorError(None, services.NEEDS_ADMIN, 403)


OWNER_DOC = (
    "EDITION:CODE of the unit that owns it (its admins and those above change it); by default the "
    "nation for a national admin, else your admin unit. Ownership moves only upwards."
)


def _owner(user: User, ref: str | None) -> Unit | None:
    return unit_in_area(ref, user.area(), field="owner_unit") if ref else None


def _as_admin(request: HttpRequest, body: Schema) -> tuple[User, dict[str, Any]]:
    """The caller, held to the admin role, and the body's fields with the owner unit it names looked up
    in the caller's area."""
    user = caller(request)
    _admin(user)
    return user, {**body.dict(), "owner_unit": _owner(user, getattr(body, "owner_unit", None))}


class OwnedOut(Schema):
    owner_unit: str | None = Field(None, description="EDITION:CODE of the unit that owns it")

    @staticmethod
    def resolve_owner_unit(obj: DataElement | Indicator) -> str:
        return obj.owner_unit.ref


def _period(pid: str, param: str = "period") -> str:
    try:
        return parse(pid).id
    except PeriodError as exc:
        raise services.IndicatorError(param, exc.message) from None


# Metadata


class OptionIn(Schema):
    code: str
    name: str


class DataElementIn(Schema):
    code: str
    name: str
    name_en: str = ""
    unit: str = ""
    aggregation: Literal["sum", "average", "last", "none"] = "sum"
    value_type: Literal["number", "integer", "percent"] = "number"
    period_type: Literal["daily", "weekly", "monthly", "quarterly", "sixmonthly", "yearly"] = "monthly"
    options: list[OptionIn] = []
    description: str = ""
    owner_unit: str | None = Field(None, description=OWNER_DOC)


class DataElementOut(OwnedOut, DataElementIn):
    pass


@router.get("/dataelements", response=list[DataElementOut], summary="Data elements")
@metadata
def list_data_elements(request: HttpRequest):
    return list(DataElement.objects.select_related("owner_unit"))


@router.post(
    "/dataelements", response={201: DataElementOut}, summary="Create or update a data element (admin)"
)
@area_aware
def post_data_element(request: HttpRequest, body: DataElementIn):
    """Only an admin of the element's owner unit (or above it) changes an existing element."""
    user, fields = _as_admin(request, body)
    return Status(201, services.save_data_element(actor=user, **fields))


class IndicatorIn(Schema):
    code: str
    name: str
    name_en: str = ""
    formula: str
    unit: str = ""
    decimals: int = Field(2, ge=0, le=6)
    description: str = ""
    owner_unit: str | None = Field(None, description=OWNER_DOC)


class IndicatorOut(OwnedOut, IndicatorIn):
    pass


@router.get("/indicators", response=list[IndicatorOut], summary="Indicators and their formulas")
@metadata
def list_indicators(request: HttpRequest):
    return list(Indicator.objects.select_related("owner_unit"))


@router.post("/indicators", response={201: IndicatorOut}, summary="Create or update an indicator (admin)")
@area_aware
def post_indicator(request: HttpRequest, body: IndicatorIn):
    """Only an admin of the indicator's owner unit (or above it) changes an existing indicator; its
    formula reads only elements and indicators owned at its owner unit or above."""
    user, fields = _as_admin(request, body)
    return Status(201, services.save_indicator(actor=user, **fields))


class TargetIn(Schema):
    indicator: str
    unit: str
    period: str
    value: float
    comment: str = ""
    owner_unit: str | None = Field(None, description=OWNER_DOC)


class TargetOut(TargetIn):
    owner_unit: str | None = Field(None, description="EDITION:CODE of the unit that owns it")


@router.get("/targets", response=list[TargetOut], summary="Targets inside your area")
@area_aware
def list_targets(request: HttpRequest, indicator: str | None = None):
    rows: QuerySet[Target] = Target.objects.visible_to(caller(request)).select_related(
        "indicator", "unit", "owner_unit"
    )
    if indicator:
        rows = rows.filter(indicator__code=indicator)
    return [
        {
            "indicator": t.indicator.code,
            "unit": t.unit.ref,
            "period": t.period,
            "value": t.value,
            "comment": t.comment,
            "owner_unit": t.owner_unit.ref,
        }
        for t in rows.order_by("indicator__code", "period")
    ]


@router.post(
    "/targets",
    response={201: TargetOut},
    summary="Set a target of an indicator for a unit and period (admin)",
)
@area_aware
def post_target(request: HttpRequest, body: TargetIn):
    """For a unit inside your admin grants; a target owned above your admin unit is not yours to change."""
    user, fields = _as_admin(request, body)
    unit = fields["unit"] = unit_in_area(body.unit, user.area())
    target = services.save_target(actor=user, **fields)
    return Status(
        201, {**body.dict(), "unit": unit.ref, "period": target.period, "owner_unit": target.owner_unit.ref}
    )


class DataSetOut(Schema):
    code: str
    name: str
    name_en: str
    period_type: str
    unit_kind: str
    due_day: int
    elements: list[str]
    owner_unit: str


@router.get("/datasets", response=list[DataSetOut], summary="Data sets: what each kind of unit reports")
@metadata
def list_data_sets(request: HttpRequest):
    return [
        {
            **{f: getattr(d, f) for f in DataSetOut.model_fields if f not in ("elements", "owner_unit")},
            "elements": [e.code for e in d.elements.all()],
            "owner_unit": d.owner_unit.ref,
        }
        for d in DataSet.objects.prefetch_related("elements").select_related("owner_unit")
    ]


# Data values


def _summary_response(summary: datavalues.ImportSummary) -> HttpResponse:
    status = 409 if summary.status == "ERROR" else 200
    body = json.dumps(summary.as_dict(), ensure_ascii=False)
    return HttpResponse(body, status=status, content_type="application/json")


@router.post(
    "/datavalues",
    response={200: dict[str, Any], 409: dict[str, Any]},
    openapi_extra=JSON_OR_CSV,
    summary="Import data values (DHIS2 dataValueSets JSON or CSV); answers DHIS2's import summary",
)
@area_aware  # rows outside the caller's operator area are refused as conflicts
def post_data_values(request: HttpRequest, dryRun: bool = False, edition: str = "VN-2025"):
    user = caller(request)
    area = services.writable_area(user)
    if not area:
        raise DomainError(None, _("entering data values needs the operator role"), 403)
    records = datavalues.records_of(request.body, request.content_type or "")  # ImportFormatError: 422
    summary = datavalues.import_values(records, actor=user, area=area, edition=edition, dry_run=dryRun)
    return _summary_response(summary)


class ValuesQuery(Schema):
    data_set: str | None = Field(None, alias="dataSet")
    data_element: str | None = Field(None, alias="dataElement")
    period: str | None = None
    org_unit: str | None = Field(None, alias="orgUnit")
    children: bool = True
    format: Literal["json", "csv"] = "json"
    last_updated: Moment | None = Field(None, alias="lastUpdated")


@router.get(
    "/datavalues",
    response=dict[str, Any],
    summary="Data values inside your area, as DHIS2 dataValueSets JSON or CSV",
    openapi_extra={"responses": {200: {"content": {"application/json": {}, "text/csv": {}}}}},
)
@area_aware
def get_data_values(request: HttpRequest, q: Query[ValuesQuery]):
    user = caller(request)
    rows: QuerySet[DataValue] = DataValue.objects.visible_to(user).select_related(
        "element", "unit", "stored_by"
    )
    if q.data_set:
        data_set = DataSet.objects.filter(code=q.data_set).first()
        if data_set is None:
            raise _no_data_set("dataSet", q.data_set)
        rows = rows.filter(services.data_set_q(data_set))
    if q.data_element:
        rows = rows.filter(element__code=q.data_element)
    if q.period:
        rows = rows.filter(period=_period(q.period))
    if q.org_unit:
        unit = unit_in_area(q.org_unit, user.area(), field="org_unit")
        rows = rows.filter(unit__in=Unit.objects.under(unit)) if q.children else rows.filter(unit=unit)
    if q.last_updated:
        rows = rows.filter(updated_at__gte=q.last_updated)
    found = datavalues.export_rows(rows.order_by("element__code", "period", "unit__path", "option")[:100_000])
    if q.format == "csv":
        response = HttpResponse(datavalues.rows_as_csv(found), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="datavalues.csv"'
        return response
    return {"dataValues": found}


@router.get(
    "/datavalues/{value_id}/audit",
    response=list[dict[str, Any]],
    summary="The history of one data value's cell: every change, old and new, who and when",
)
@area_aware
def get_value_audit(request: HttpRequest, value_id: int):
    value: DataValue | None = DataValue.objects.visible_to(caller(request)).filter(pk=value_id).first()
    if value is None:
        raise services.IndicatorError("value_id", _("no data value %(id)s") % {"id": value_id}, 404)
    return datavalues.history(value)


# Excel


@router.get(
    "/datasets/{code}/template.xlsx",
    summary="An Excel form of the data set for a unit and period, filled with the values stored",
    openapi_extra={"responses": {200: {"content": {excel.XLSX_TYPE: {}}}}},
)
@area_aware
def get_template(request: HttpRequest, code: str, unit: str, period: str) -> HttpResponse:
    user = caller(request)
    data_set = _data_set(code)
    target = unit_in_area(unit, user.area())
    content = excel.template(data_set, target, _period(period))
    response = HttpResponse(content, content_type=excel.XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{code}-{target.code}-{period}.xlsx"'
    return response


@router.post(
    "/datasets/{code}/upload",
    response={200: dict[str, Any], 409: dict[str, Any]},
    openapi_extra=XLSX_BODY,
    summary="Upload a filled Excel form; answers the import summary with each bad row's line",
)
@area_aware
def post_upload(request: HttpRequest, code: str, dryRun: bool = False):
    user = caller(request)
    area = services.writable_area(user)
    if not area:
        raise DomainError(None, _("entering data values needs the operator role"), 403)
    data_set = _data_set(code)
    records = excel.records(request.body, data_set)  # TemplateError: 422
    summary = datavalues.import_values(records, actor=user, area=area, dry_run=dryRun)
    return _summary_response(summary)


def _data_set(code: str) -> DataSet:
    found = DataSet.objects.filter(code=code).prefetch_related("elements").first()
    if found is None:
        raise _no_data_set("code", code)
    return found


def _no_data_set(field: str, code: str) -> services.IndicatorError:
    return services.IndicatorError(field, _("no data set '%(code)s'") % {"code": code}, 404)


# Completeness


class CompletenessQuery(Schema):
    period: str
    parent: str | None = Field(
        None, description="the units of the set's kind under this unit (default: your area)"
    )
    edition: str = "VN-2025"


@router.get("/datasets/{code}/completeness", response=dict[str, Any], summary="Who reported, on time or late")
@area_aware
def get_completeness(request: HttpRequest, code: str, q: Query[CompletenessQuery]):
    user = caller(request)
    data_set = _data_set(code)
    period = _period(q.period)
    parent = unit_in_area(q.parent, user.area(), field="parent") if q.parent else None
    units = Unit.objects.filter(
        edition_id=parent.edition_id if parent else q.edition, kind=data_set.unit_kind
    )
    units = (units.under(parent) if parent else units).visible_to(user).order_by("path")
    reports = services.completeness(data_set, period, list(units[:20_000]))
    done = [r for r in reports if r.reported_at]
    # With approval on (issue 19): which of them approved the period (at their level or above).
    approving = DataSetApproval.objects.filter(data_set=data_set).exists()
    approved = approved_units(data_set, period, [r.unit for r in reports]) if approving else set()
    return {
        "dataSet": code,
        "period": period,
        "due": services.due_date(data_set, period).isoformat(),
        "expected": len(reports),
        "reported": len(done),
        "on_time": sum(r.on_time for r in done),
        "late": sum(not r.on_time for r in done),
        "approved": len(approved) if approving else None,
        "units": [
            {
                "unit": r.unit.ref,
                "name": r.unit.name,
                "reported_at": r.reported_at.isoformat() if r.reported_at else None,
                "state": "on_time" if r.on_time else ("late" if r.reported_at else "missing"),
                "approved": (r.unit.pk in approved) if approving else None,
            }
            for r in reports
        ],
    }


# Analytics


class AnalyticsQuery(Schema):
    dx: str = Field(
        ..., description="indicators, data elements (code or code.option) or ev.kind…, ';'-separated"
    )
    pe: str = Field(..., description="DHIS2 periods, ';'-separated: 202108;2021YTD08;2021Q3")
    ou: str = Field(
        "USER_ORGUNIT",
        description="units (EDITION:CODE or code), LEVEL-n, USER_ORGUNIT, USER_ORGUNIT_CHILDREN",
    )
    edition: EditionCode = "VN-2025"
    empty: bool = Field(False, description="also rows without a value")
    lang: Literal["vi", "en"] = "vi"
    approval_level: str | None = Field(
        None,
        alias="approvalLevel",
        description="as DHIS2: count only data approved at this level or above (commune, district, province, "
        "nation, or the map's level number); data sets without approval are counted as they are",
    )


class AnalyticsRow(Schema):
    dx: str
    pe: str
    ou: str
    value: float | None
    unit: str
    same_period_last_year: float | None
    change_pct: float | None
    target: float | None
    target_pct: float | None
    status: str
    carried: bool = Field(description="the value was carried across map editions through the succession")
    pe_label: str
    ou_name: str


class AnalyticsOut(Schema):
    headers: list[dict[str, str]]
    rows: list[AnalyticsRow]


@router.get(
    "/analytics", response=AnalyticsOut, summary="Indicators × periods × units, from the data as it is now"
)
@area_aware
@replica_reads
def get_analytics(request: HttpRequest, q: Query[AnalyticsQuery]):
    user = caller(request)
    area = user.area()
    roots = _roots(user, q.edition)
    items = [i.strip() for i in q.ou.split(";") if i.strip()]
    units = analytics.units_asked(services.units_named(items, edition=q.edition, area=area, roots=roots))
    periods = analytics.periods_of(q.pe)
    dims = [analytics.dimension(code) for code in q.dx.split(";") if code.strip()]
    if not dims:
        raise analytics.AnalyticsError("dx", _("name at least one indicator or data element"))
    if len(dims) * len(periods) * len(units) > 500_000:
        raise analytics.AnalyticsError(
            "ou", _("the question has over 500,000 cells; ask for fewer units or periods")
        )
    headers = [{"dx": d.code, "name": d.name, "unit": d.unit} for d in dims]
    approval = (
        approval_kind(q.approval_level, Edition.objects.get(code=q.edition)) if q.approval_level else None
    )
    rows = analytics.rows_json(
        dims, periods, units, area=area, language=q.lang, empty=q.empty, approval=approval
    )
    # Encoded directly, and the rows once per answer kept: validating tens of thousands of rows against
    # the schema would cost more than computing them (the schema above documents the answer). The rows'
    # pieces are joined once, here: a national answer's 8.6 MB copied once per request.
    body = b"".join([b'{"headers":', msgspec.json.encode(headers), b',"rows":', *rows, b"}"])
    return HttpResponse(body, content_type="application/json")


def _roots(user: User, edition: str) -> list[Unit]:
    """The caller's own units on the edition (the nation for a national grant)."""
    area = user.area()
    if area.everything:
        return [get_unit(f"{edition}:VN")]
    return list(Unit.objects.filter(grants__user=user, edition_id=edition).distinct().order_by("path"))
