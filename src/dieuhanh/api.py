"""The HTTP API under /api/v1: the apps' routers, auth, problem+json errors, deny-by-default."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from http import HTTPStatus
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from pydantic import ConfigDict, Field

from dieuhanh.accounts.api import router as accounts_router
from dieuhanh.accounts.auth import api_auth
from dieuhanh.directives.api import router as directives_router
from dieuhanh.directives.assignments_api import router as tasks_router
from dieuhanh.directives.quality_assignments import router as quality_tasks_router
from dieuhanh.errors import PROBLEM_TYPE, DomainError
from dieuhanh.errors import problem as answer
from dieuhanh.feedback.api import router as feedback_router
from dieuhanh.indicators.api import router as indicators_router
from dieuhanh.indicators.approval.api import router as approval_router
from dieuhanh.indicators.quality.api import router as quality_router
from dieuhanh.reports.api import router as reports_router
from dieuhanh.tracing.api import router as tracing_router
from dieuhanh.units.api import router as units_router
from dieuhanh.units.scoping import below_nation, is_declared, public
from dieuhanh.warehouse.api import router as warehouse_router
from dieuhanh.warehouse.enterprises.api import router as enterprises_router


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
    code: str = Field(description="stable, for clients to branch on: invalid, not_found, forbidden…")
    field: str | None = Field(description="the input at fault, null when the refusal names none")
    errors: list[FieldError] | None = None
    position: int | None = None


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


@api.exception_handler(DomainError)
@api.exception_handler(ValidationError)
@api.exception_handler(AuthenticationError)
@api.exception_handler(Http404)
@api.exception_handler(HttpError)
@api.exception_handler(PermissionError)
def _refused(request: HttpRequest, exc: Exception) -> HttpResponse:
    """The API's one error handler: every refusal, the apps' and the framework's, as one shape
    (dieuhanh.errors.problem_body; docs/decisions.md, "Errors")."""
    return answer(request, as_domain_error(exc))


def as_domain_error(exc: Exception) -> DomainError:
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, ValidationError):
        errors = [
            {"loc": list(e.get("loc", [])), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors
        ]
        names = [".".join(str(p) for p in e["loc"][1:] or e["loc"]) for e in errors]
        detail = _("Invalid parameter: %(names)s") % {"names": ", ".join(names)}
        return DomainError(None, detail, 422, errors=errors)
    if isinstance(exc, AuthenticationError):
        return DomainError(None, _("Missing or invalid token: send 'Authorization: Bearer <token>'."), 401)
    if isinstance(exc, Http404):
        return DomainError(None, str(exc) or _("Not found."), 404)
    if isinstance(exc, HttpError):
        return DomainError(None, str(exc), exc.status_code)
    return DomainError(None, str(exc) or _("Forbidden."), 403)


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
            raise DomainError(None, _("This route is for national users only."), 403)
        return view(request, *args, **kwargs)

    return guard


api.add_decorator(deny_undeclared)
for app_router in (
    accounts_router,
    units_router,
    warehouse_router,
    enterprises_router,
    tracing_router,
    directives_router,
    tasks_router,
    feedback_router,
    indicators_router,
    quality_router,
    quality_tasks_router,
    approval_router,
    reports_router,
):  # the order their URLs are tried in
    api.add_router("/", app_router)
