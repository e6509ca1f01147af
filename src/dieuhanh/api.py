"""The HTTP API under /api/v1: the apps' routers, auth, problem+json errors, deny-by-default."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from http import HTTPStatus
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from pydantic import ConfigDict

from dieuhanh.accounts.api import router as accounts_router
from dieuhanh.accounts.auth import api_auth
from dieuhanh.directives.api import router as directives_router
from dieuhanh.directives.assignments_api import router as tasks_router
from dieuhanh.directives.quality_assignments import router as quality_tasks_router
from dieuhanh.directives.services import DirectiveError
from dieuhanh.errors import DomainError
from dieuhanh.errors import problem as domain_problem
from dieuhanh.feedback.api import router as feedback_router
from dieuhanh.feedback.services import FeedbackError
from dieuhanh.indicators.analytics import AnalyticsError
from dieuhanh.indicators.api import router as indicators_router
from dieuhanh.indicators.approval.api import router as approval_router
from dieuhanh.indicators.approval.services import ApprovalError
from dieuhanh.indicators.formula import FormulaError
from dieuhanh.indicators.quality.api import router as quality_router
from dieuhanh.indicators.services import IndicatorError
from dieuhanh.reports.api import router as reports_router
from dieuhanh.reports.definition import DefinitionError
from dieuhanh.reports.services import ReportError
from dieuhanh.tracing.api import router as tracing_router
from dieuhanh.tracing.services import TracingError
from dieuhanh.units.api import router as units_router
from dieuhanh.units.scoping import below_nation, is_declared, public
from dieuhanh.warehouse.api import router as warehouse_router
from dieuhanh.warehouse.enterprises.api import router as enterprises_router
from dieuhanh.warehouse.enterprises.services import EnterpriseError

PROBLEM_TYPE = "application/problem+json"


class FieldError(Schema):
    loc: list[str | int]
    msg: str
    type: str


class Problem(Schema):
    """Every error answer of the API: an RFC 9457 problem document. The OpenAPI document lists it
    for each operation's 4xx answers, from this one model. A handler may add members of its own
    (RFC 9457 extensions): they are kept, not dropped."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldError] | None = None
    field: str | None = None
    position: int | None = None


def problem(request: HttpRequest, status: int, detail: str, **extra) -> HttpResponse:
    """An RFC 9457 problem document."""
    body = Problem(
        type="about:blank",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.path,
        **extra,
    ).model_dump(exclude_unset=True)
    return HttpResponse(json.dumps(body, ensure_ascii=False), status=status, content_type=PROBLEM_TYPE)


class ProblemAPI(NinjaAPI):
    """The API whose OpenAPI document names, for every operation, the 4xx answers it can give."""

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: Any = None) -> Any:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schema["components"]["schemas"].update(_problem_schemas())
        for operations in schema["paths"].values():
            for operation in operations.values():
                for status in _client_errors(operation):
                    operation["responses"].setdefault(status, _problem_answer(status))
        return schema


def _problem_schemas() -> dict[str, Any]:
    found = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = found.pop("$defs", {})
    return {**definitions, "Problem": found}


def _client_errors(operation: dict[str, Any]) -> list[int]:
    """What any operation of this shape can answer, from the handlers below and deny_undeclared."""
    statuses = []
    takes_input = bool(operation.get("parameters") or operation.get("requestBody"))
    if operation.get("requestBody"):
        statuses.append(400)  # a body that does not parse
    if operation.get("security"):
        statuses += [401, 403]  # no or a bad token; outside the caller's role or area
    if takes_input:
        statuses += [404, 422]  # names something the caller cannot see; a value that does not fit
    return statuses


def _problem_answer(status: int) -> dict[str, Any]:
    return {
        "description": HTTPStatus(status).phrase,
        "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


api = ProblemAPI(
    title="Điều hành API",
    version="1",
    description="The command room's API. Errors are RFC 9457 problem+json.",
    auth=api_auth,
    urls_namespace="api",
)


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [
        {"loc": list(e.get("loc", [])), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors
    ]
    names = ", ".join(".".join(str(p) for p in e["loc"][1:] or e["loc"]) for e in errors)
    return problem(request, 422, f"Invalid parameter: {names}", errors=errors)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = problem(request, 401, "Missing or invalid token: send 'Authorization: Bearer <token>'.")
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return problem(request, 404, str(exc) or "Not found")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return problem(request, exc.status_code, str(exc))


@api.exception_handler(DomainError)
def _domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return domain_problem(request, exc)


@api.exception_handler(TracingError)
@api.exception_handler(DirectiveError)
def _app_error(request: HttpRequest, exc: TracingError | DirectiveError) -> HttpResponse:
    return problem(request, exc.status, str(exc))


@api.exception_handler(FeedbackError)
def _feedback_error(request: HttpRequest, exc: FeedbackError) -> HttpResponse:
    response = problem(request, exc.status, str(exc), field=exc.field)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(IndicatorError)
def _indicator_error(request: HttpRequest, exc: IndicatorError) -> HttpResponse:
    return problem(request, exc.status, str(exc), field=exc.field)


@api.exception_handler(EnterpriseError)
def _enterprise_error(request: HttpRequest, exc: EnterpriseError) -> HttpResponse:
    return problem(request, exc.status, str(exc), field=exc.field)


@api.exception_handler(ApprovalError)
def _approval_error(request: HttpRequest, exc: ApprovalError) -> HttpResponse:
    extra = {"units": exc.units} if exc.units else {}
    return problem(request, exc.status, str(exc), field=exc.field, **extra)


@api.exception_handler(AnalyticsError)
def _analytics_error(request: HttpRequest, exc: AnalyticsError) -> HttpResponse:
    return problem(request, 422, str(exc), field=exc.param)


@api.exception_handler(FormulaError)
def _formula_error(request: HttpRequest, exc: FormulaError) -> HttpResponse:
    return problem(request, 422, f"formula: {exc}", position=exc.position)


@api.exception_handler(ReportError)
def _report_error(request: HttpRequest, exc: ReportError) -> HttpResponse:
    return problem(request, exc.status, str(exc), field=exc.field)


@api.exception_handler(DefinitionError)
def _definition_error(request: HttpRequest, exc: DefinitionError) -> HttpResponse:
    return problem(request, 422, f"report definition: {exc}", field=exc.where)


@api.exception_handler(PermissionError)
def _forbidden(request: HttpRequest, exc: PermissionError) -> HttpResponse:
    return problem(request, 403, str(exc) or "Forbidden")


@api.get("/health", auth=None, summary="Liveness: answers without authentication")
@public
def health(request: HttpRequest):
    return {"status": "ok"}


def deny_undeclared(view: Callable) -> Callable:
    """Deny by default: an operation not declared area-aware or public is for national users only."""
    if is_declared(view):
        return view

    @wraps(view)
    def guard(request: HttpRequest, *args, **kwargs):
        if below_nation(request.user):
            raise PermissionError("This route is for national users only.")
        return view(request, *args, **kwargs)

    return guard


api.add_decorator(deny_undeclared)
api.add_router("/", accounts_router)
api.add_router("/", units_router)
api.add_router("/", warehouse_router)
api.add_router("/", enterprises_router)
api.add_router("/", tracing_router)
api.add_router("/", directives_router)
api.add_router("/", tasks_router)
api.add_router("/", feedback_router)
api.add_router("/", indicators_router)
api.add_router("/", quality_router)
api.add_router("/", quality_tasks_router)
api.add_router("/", approval_router)
api.add_router("/", reports_router)
