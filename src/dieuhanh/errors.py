"""The one error a request is refused with, and the one shape it is answered in (issue 15, point 2).

Every app refuses with a DomainError (its own subclass keeps a familiar name, nothing more): a `code`
a client can branch on, the `field` at fault when one is, a `message` in the reader's language
(gettext_lazy, so that it is translated when answered, not when raised), and the HTTP `status`.
`dieuhanh.api` answers it as problem+json, the pages through `DomainErrorMiddleware`; both build
the body with `problem_body`. The statuses follow one rule, written in docs/decisions.md ("Errors").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any, cast

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.functional import Promise, lazy
from django.utils.translation import gettext_lazy as _
from django.views import defaults

PROBLEM_TYPE = "application/problem+json"

# The code a status gets when the raiser names none.
CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "too_many_requests",
    503: "unavailable",
}


class DomainError(ValueError):
    """A request that cannot be carried out: why (`message`), the input at fault (`field`, or None),
    the HTTP `status`, a stable `code`, how long to wait before asking again (`retry_after`, seconds)
    and any further members of the answer (`extra`)."""

    status = 422

    def __init__(
        self,
        field: str | None,
        message: str | Promise,
        status: int | None = None,
        *,
        code: str | None = None,
        retry_after: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(field, message)
        self.field = field or None
        self.message = message
        self.status = status or type(self).status
        self.code = code or CODES.get(self.status, "error")
        self.retry_after = retry_after
        self.extra = extra

    @property
    def detail(self) -> str:
        """What the reader is told: "field: why" when a field is at fault."""
        return f"{self.field}: {self.message}" if self.field else str(self.message)

    def labelled(self, labels: Mapping[str, str | Promise]) -> str:
        """What a form shows: "Label: why" when the field at fault (an item of a list, `photos[2]`,
        counts as its list) has a label in `labels`, else only why."""
        label = labels.get((self.field or "").split("[")[0], "")
        return f"{label}: {self.message}" if label else str(self.message)

    def __str__(self) -> str:
        return self.detail

    def __reduce__(self) -> Any:
        return _rebuild, (type(self), self.__dict__)


def _rebuild(cls: type[DomainError], state: dict[str, Any]) -> DomainError:
    """Unpickling (a worker process's error) without calling a subclass's own __init__."""
    error = cls.__new__(cls)
    ValueError.__init__(error, state.get("field"), state.get("message"))
    error.__dict__.update(state)
    return error


def problem_body(path: str, error: DomainError) -> dict[str, Any]:
    """The RFC 9457 problem document of a refusal, the same members for every app: `detail` reads
    "field: why" when a field is at fault, `field` and `code` are always present."""
    return {
        "type": "about:blank",
        "title": HTTPStatus(error.status).phrase,
        "status": error.status,
        "detail": error.detail,
        "instance": path,
        "code": error.code,
        "field": error.field,
        **error.extra,
    }


def problem(request: HttpRequest, error: DomainError) -> HttpResponse:
    body = json.dumps(problem_body(request.path, error), ensure_ascii=False)
    response = HttpResponse(body, status=error.status, content_type=PROBLEM_TYPE)
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response


def _formatted(message: str | Promise, params: dict[str, Any]) -> str:
    return str(message) % params


_lazy_formatted = cast("Callable[[str | Promise, dict[str, Any]], Promise]", lazy(_formatted, str))


def lazy_format(message: str | Promise, **params: Any) -> Promise:
    """`message % params` put off until the text is read, in the reader's language: for a refusal made
    where no language is active yet (a formula read at import) or in a loop that may never show it.
    Pickles (a worker's error) as long as the params do."""
    return _lazy_formatted(message, params)


# Messages the shared code answers with.
NOT_IN_AREA = _("no unit '%(ref)s' in your area")
NOT_A_REF = _("'%(ref)s' is not a unit reference: write EDITION:CODE (e.g. VN-2025:79) or a code")
FORBIDDEN = _("your role may not do this here")


@contextmanager
def not_found(*refusals: type[Exception], message: str | Promise | None = None) -> Iterator[None]:
    """A page's look-up whose refusal means "not here for you": any of `refusals` raised inside becomes
    the site's 404, told with `message` or, without one, the refusal's own words."""
    try:
        yield
    except refusals as e:
        raise Http404(str(e if message is None else message)) from None


class DomainErrorMiddleware:
    """The pages' side of the one handler: a DomainError a page lets through is answered as Django
    answers its own 404 and 403 (the site's error pages), any other status with the message, in the
    reader's language. Pages that can show the error in their form catch it themselves."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DomainError) or request.path.startswith("/api/"):
            return None
        if exception.status == 404:
            return defaults.page_not_found(request, Http404(str(exception)))
        if exception.status == 403:
            return defaults.permission_denied(request, PermissionDenied(str(exception)))
        return HttpResponse(str(exception), status=exception.status, content_type="text/plain; charset=utf-8")
