"""Reads on a PostgreSQL streaming replica, where they may be a few seconds old (docs/replica.md).

With `DIEUHANH_DATABASE_REPLICA_URL` set, settings add the `replica` database and this module's
`ReplicaRouter`. Writes always go to the primary (`default`). A read goes to the replica only when all
of these hold, and to the primary otherwise:

- it runs inside a replica-read scope: `@replica_reads` on a page view or a django-ninja operation, or
  `replica_reads(fn, user=...)` / `with replica_reads(user=...)` around a service call; everything else
  (writes' own reads, the inbox, tracing, the admin) stays on the primary as before;
- the replica is healthy: it answers, and its lag is at most `REPLICA_MAX_LAG` seconds (measured at
  most every CHECK_SECONDS per process, the verdict cached; a replica that does not answer is passed
  over for DOWN_SECONDS before it is tried again, so a stopped one costs no request more than one
  refused connection); each change of state is logged once;
- the caller has not written in the last `REPLICA_MAX_LAG` seconds (read-your-writes, see PinMiddleware),
  no write happened earlier in the scope or the request, and no transaction is open on the primary;
- the model is not one whose reads decide access (users, grants, tokens, sessions: ALWAYS_PRIMARY), so
  that a revoked grant takes effect at once rather than after the lag.

A scope's decision is taken once, when it starts, so that a page is read from one server (figures of one
page never mix two moments of the data). A scoped view or function that fails on the replica's
connection (stopped, restarted, a query cancelled by recovery) is run again on the primary: the caller
sees no error. Scoped code must therefore be reads (a GET page, a report's reads) — which is also why a
scope never wraps a report's archive row.

It imports nothing of the project's apps, so that every layer may use it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import threading
import types
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from time import monotonic
from typing import Any, TypeVar, cast

import psycopg
from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.db.models import Model
from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone
from django.utils.crypto import salted_hmac

logger = logging.getLogger(__name__)

REPLICA = "replica"
DEFAULT = DEFAULT_DB_ALIAS
CHECK_SECONDS = 2.0  # a healthy or lagging verdict is trusted this long per process
DOWN_SECONDS = 5.0  # a replica that did not answer is not asked again for this long
CONNECT_TIMEOUT = 2  # seconds (libpq's minimum); a refused connection fails at once anyway
STATEMENT_TIMEOUT_MS = 2000  # the health query itself
# Reads of these apps decide who may see what, or who is signed in: always from the primary.
ALWAYS_PRIMARY = frozenset({"sessions", "auth", "accounts", "admin"})
# Writes that do not pin their author to the primary: bookkeeping that no replica-routed read shows back
# (a session, a token's last use, an audit row written by a read, a report's archive row).
NOT_PINNING = frozenset({"sessions.session", "accounts.apitoken", "accounts.auditentry", "reports.report"})
PIN_COOKIE = "dieuhanh_pin"
_PIN_SALT = "dieuhanh.replica.pin"
_PIN_KEY_PREFIX = "dhpin"  # shared pins are rows of django_session under this prefix (see pin())

F = TypeVar("F", bound=Callable[..., Any])


def configured() -> bool:
    return REPLICA in settings.DATABASES


def max_lag() -> float:
    return float(getattr(settings, "REPLICA_MAX_LAG", 10.0))


def pin_seconds() -> float:
    """How long a writer's reads stay on the primary: the lag allowed, plus the age a cached health
    verdict may have (a replica judged 9 s behind 2 s ago may be 11 s behind now)."""
    return max_lag() + CHECK_SECONDS


# Health ------------------------------------------------------------------------------------------

HEALTHY, LAGGING, DOWN, UNKNOWN = "healthy", "lagging", "down", "unknown"


@dataclass(frozen=True)
class Verdict:
    state: str
    lag: float | None  # seconds, an upper bound; None when not measured
    until: float  # monotonic time until which the verdict is trusted
    detail: str = ""

    @property
    def usable(self) -> bool:
        return self.state == HEALTHY


def _lsn(text: str | None) -> int | None:
    """'16/B374D848' as a number, to compare WAL positions."""
    if not text:
        return None
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


class ReplicaHealth:
    """The replica's state as this process last measured it.

    Lag. `now() - pg_last_xact_replay_timestamp()` on the replica alone is the age of the last replayed
    commit: on a primary with nothing to write it grows without any lag at all, and would send every
    read to the primary after a quiet minute. So the primary's WAL position is compared first: a
    replica that has replayed up to the primary's `pg_current_wal_flush_lsn()` (asked for just before)
    holds everything the primary had then, lag 0. A replica behind it is at most as stale as (a) the
    age of its last replayed commit and (b) the time since this process last saw the primary at a
    position the replica has now replayed (the positions seen are kept); the smaller bound is the lag.
    (b) is what keeps the first write after a quiet hour from reading as an hour's lag; (a) covers a
    process's first check. A replica whose replay is paused or stuck thus shows its lag growing, while a
    busy replica a few milliseconds behind shows about the check interval at most.

    Its own connection (not Django's pool, whose wait for a connection is DB_POOL_TIMEOUT seconds) with a
    short connect timeout: a stopped replica refuses at once, an unreachable one costs CONNECT_TIMEOUT
    once per DOWN_SECONDS per process. One thread checks at a time; the others use the last verdict.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verdict: Verdict | None = None
        self._logged: str | None = None
        self._conn: psycopg.Connection | None = None
        self._seen: deque[tuple[float, int]] = deque(maxlen=256)  # (monotonic time, primary's WAL)

    def verdict(self) -> Verdict:
        """The cached verdict, or a fresh one when it is stale (another thread checking: the old one)."""
        verdict = self._verdict
        if verdict is not None and monotonic() < verdict.until:
            return verdict
        if not self._lock.acquire(blocking=False):
            return verdict or Verdict(UNKNOWN, None, 0.0, "being checked")
        try:
            return self._set(self._check())
        finally:
            self._lock.release()

    def recheck(self) -> Verdict:
        """Measure now (after a failure on the replica's connection)."""
        with self._lock:
            return self._set(self._check())

    def reset(self) -> None:
        """Forget everything (tests; a process whose settings changed)."""
        with self._lock:
            self._drop()
            self._verdict, self._logged = None, None
            self._seen.clear()

    def _set(self, verdict: Verdict) -> Verdict:
        self._verdict = verdict
        if verdict.state != self._logged:
            lag = "" if verdict.lag is None else f", lag {verdict.lag:.1f} s"
            if verdict.state == HEALTHY:
                level = logging.WARNING if self._logged in (LAGGING, DOWN) else logging.INFO
                logger.log(level, "replica healthy%s: scoped reads go to it", lag)
            elif verdict.state == LAGGING:
                logger.warning(
                    "replica lagging%s (over %s s): reads go to the primary", lag, f"{max_lag():g}"
                )
            else:
                logger.warning("replica down (%s): reads go to the primary", verdict.detail)
            self._logged = verdict.state
        return verdict

    def _check(self) -> Verdict:
        started = monotonic()
        if connections[REPLICA].vendor != "postgresql":
            return Verdict(HEALTHY, None, started + CHECK_SECONDS, "not PostgreSQL: lag not measured")
        primary = self._primary_lsn()
        try:
            in_recovery, replayed_text, age = self._ask_replica()
        except (psycopg.Error, OSError) as exc:
            self._drop()
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return Verdict(DOWN, None, monotonic() + DOWN_SECONDS, detail)
        replayed = _lsn(replayed_text)
        if not in_recovery:
            lag, detail = 0.0, "not in recovery (a primary)"
        elif primary is not None and replayed is not None and replayed >= primary:
            lag, detail = 0.0, "caught up"
        else:
            bounds = [max(float(age), 0.0)] if age is not None else []
            if replayed is not None:
                caught = [t for t, position in self._seen if position <= replayed]
                if caught:
                    bounds.append(started - max(caught))
            lag, detail = (min(bounds) if bounds else math.inf), "behind the primary"
        if primary is not None:
            self._seen.append((started, primary))
        state = HEALTHY if lag <= max_lag() else LAGGING
        return Verdict(state, lag, monotonic() + CHECK_SECONDS, detail)

    def _primary_lsn(self) -> int | None:
        primary = connections[DEFAULT]
        if primary.vendor != "postgresql":
            return None
        try:
            with primary.cursor() as cursor:
                cursor.execute("SELECT pg_current_wal_flush_lsn()::text")
                return _lsn(cursor.fetchone()[0])
        except Exception as exc:  # the timestamp bound still applies; the request must not fail for this
            logger.debug("replica: primary's WAL position unknown: %s", exc)
            return None

    def _ask_replica(self) -> tuple[bool, str | None, float | None]:
        for attempt in (1, 2):  # a kept connection may be stale (the replica restarted): one fresh try
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            try:
                row = self._conn.execute(
                    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
                    " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8"
                ).fetchone()
                assert row is not None
                return bool(row[0]), row[1], row[2]
            except psycopg.OperationalError:
                self._drop()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _connect(self) -> psycopg.Connection:
        params = connections[REPLICA].get_connection_params()
        for django_only in ("cursor_factory", "context", "prepare_threshold"):
            params.pop(django_only, None)
        conn = psycopg.connect(**params, connect_timeout=CONNECT_TIMEOUT, autocommit=True)
        conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # it is being thrown away
                self._conn.close()
        self._conn = None


HEALTH = ReplicaHealth()


# Read-your-writes --------------------------------------------------------------------------------

_LOCAL_PINS: dict[int, float] = {}  # user id → monotonic deadline, this process's writers


@dataclass
class _RequestState:
    """What PinMiddleware knows of the request it is running."""

    request: HttpRequest
    wrote: bool = False


_REQUEST: ContextVar[_RequestState | None] = ContextVar("dieuhanh_replica_request", default=None)


def _bearer(request: HttpRequest) -> bool:
    return bool(request.headers.get("Authorization"))


def _shared_key(user_id: int) -> str:
    return _PIN_KEY_PREFIX + salted_hmac(_PIN_SALT, str(user_id)).hexdigest()[:35]  # 40 characters


def pin(user_id: int) -> None:
    """Send the user's scoped reads to the primary for pin_seconds(), in every process.

    This process remembers it in memory; the others find it in the primary's own database: a row of
    Django's session table (django_session: a key, data, an expiry date, cleaned by `clearsessions`),
    keyed by an HMAC of the user id and holding no data, so it is never a session anyone can use. That
    is a tiny expiring key-value store every process already shares, without a model or a migration.
    Browsers also get a signed cookie (PinMiddleware), which spares their page views the look-up.
    """
    if not configured():
        return
    seconds = pin_seconds()
    now = monotonic()
    if len(_LOCAL_PINS) > 10_000:  # forget the expired ones now and then
        for uid, deadline in list(_LOCAL_PINS.items()):
            if deadline < now:
                _LOCAL_PINS.pop(uid, None)
    _LOCAL_PINS[user_id] = now + seconds
    from django.contrib.sessions.models import Session

    row = Session(
        session_key=_shared_key(user_id),
        session_data="",
        expire_date=timezone.now() + timedelta(seconds=seconds),
    )
    Session.objects.using(DEFAULT).bulk_create(
        [row], update_conflicts=True, unique_fields=["session_key"], update_fields=["expire_date"]
    )


def _cookie_user(request: HttpRequest) -> str | None:
    value = request.get_signed_cookie(
        PIN_COOKIE, default=None, salt=_PIN_SALT, max_age=timedelta(seconds=pin_seconds())
    )
    return value if isinstance(value, str) else None


def is_pinned(user_id: int, request: HttpRequest | None = None) -> bool:
    """Whether the user wrote within pin_seconds(): this process's memory, then the browser's cookie for
    a request signed in by session, or else (a bearer token, a service call) the shared pin."""
    if _LOCAL_PINS.get(user_id, 0.0) > monotonic():
        return True
    if request is not None and not _bearer(request):
        return _cookie_user(request) == str(user_id)
    from django.contrib.sessions.models import Session

    return (
        Session.objects.using(DEFAULT)
        .filter(session_key=_shared_key(user_id), expire_date__gt=timezone.now())
        .exists()
    )


class PinMiddleware:
    """Notes the writes a request makes; after one by a signed-in user, pins that user to the primary
    (pin(): in this process and in the database) and, for a browser, sets the signed cookie.

    Place it right after AuthenticationMiddleware. Without it, scopes still work, but a user's own
    write is seen by their next request only once the replica has replayed it (at most the lag).
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        state = _RequestState(request)
        token = _REQUEST.set(state)
        try:
            response = self.get_response(request)
        finally:
            _REQUEST.reset(token)
        self._after(state, response)
        return response

    async def __acall__(self, request: HttpRequest) -> Any:
        state = _RequestState(request)
        token = _REQUEST.set(state)
        try:
            response = await self.get_response(request)
        finally:
            _REQUEST.reset(token)
        if state.wrote:
            await sync_to_async(self._after)(state, response)
        return response

    def _after(self, state: _RequestState, response: HttpResponseBase) -> None:
        if not state.wrote or not configured():
            return
        user = getattr(state.request, "user", None)
        if user is None or not user.is_authenticated:
            return
        try:
            pin(user.pk)
        except Exception:  # the write itself succeeded: its answer must not fail for the pin
            logger.exception("replica: could not record the pin of user %s", user.pk)
        if not _bearer(state.request):
            response.set_signed_cookie(
                PIN_COOKIE,
                str(user.pk),
                salt=_PIN_SALT,
                max_age=math.ceil(pin_seconds()),
                httponly=True,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )


# Scopes and the router ---------------------------------------------------------------------------


@dataclass
class _Scope:
    replica: bool  # decided when the scope started
    wrote: bool = False  # a write since: the rest of the scope reads the primary
    used: bool = False  # a read was sent to the replica


_SCOPE: ContextVar[_Scope | None] = ContextVar("dieuhanh_replica_scope", default=None)


def _user_id(user: Any) -> int | None:
    if user is None:
        return None
    if isinstance(user, int):
        return user
    if not getattr(user, "is_authenticated", False):
        return None
    return cast(int | None, getattr(user, "pk", None))


def _may_use_replica(request: HttpRequest | None, user: Any) -> bool:
    if not configured() or connections[DEFAULT].in_atomic_block:
        return False
    state = _REQUEST.get()
    if state is not None:
        if state.wrote:
            return False
        request = request or state.request
    if not HEALTH.verdict().usable:
        return False
    if user is None and request is not None:
        user = getattr(request, "user", None)  # evaluated here, on the primary, before the scope starts
    uid = _user_id(user)
    return uid is None or not is_pinned(uid, request)


def _replica_failed(scope: _Scope) -> bool:
    """Whether the error just raised in the scope came from the replica's connection."""
    return scope.used and configured() and connections[REPLICA].errors_occurred


def _after_replica_failure(exc: Exception) -> None:
    logger.warning("replica: a read failed (%s); running it again on the primary", exc)
    with contextlib.suppress(Exception):  # broken already; the pool discards it
        connections[REPLICA].close()
    HEALTH.recheck()


def _run(fn: Callable[..., Any], args: tuple, kwargs: dict, user: Any) -> Any:
    if _SCOPE.get() is not None:  # nested: the outer scope decided
        return fn(*args, **kwargs)
    request = args[0] if args and isinstance(args[0], HttpRequest) else None
    scope = _Scope(replica=_may_use_replica(request, user))
    token = _SCOPE.set(scope)
    try:
        return fn(*args, **kwargs)
    except (OperationalError, InterfaceError) as exc:
        if not _replica_failed(scope):
            raise
        _after_replica_failure(exc)
    finally:
        _SCOPE.reset(token)
    token = _SCOPE.set(_Scope(replica=False))
    try:
        return fn(*args, **kwargs)
    finally:
        _SCOPE.reset(token)


async def _arun(fn: Callable[..., Any], args: tuple, kwargs: dict, user: Any) -> Any:
    if _SCOPE.get() is not None:
        return await fn(*args, **kwargs)
    request = args[0] if args and isinstance(args[0], HttpRequest) else None
    scope = _Scope(replica=await sync_to_async(_may_use_replica)(request, user))
    token = _SCOPE.set(scope)
    try:
        return await fn(*args, **kwargs)
    except (OperationalError, InterfaceError) as exc:
        if not _replica_failed(scope):
            raise
        await sync_to_async(_after_replica_failure)(exc)
    finally:
        _SCOPE.reset(token)
    token = _SCOPE.set(_Scope(replica=False))
    try:
        return await fn(*args, **kwargs)
    finally:
        _SCOPE.reset(token)


def _decorate(fn: F, user: Any = None) -> F:
    run, arun = _run, _arun

    async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
        return await arun(fn, args, kwargs, user)

    def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
        return run(fn, args, kwargs, user)

    wrapper: Callable[..., Any] = async_wrapper if iscoroutinefunction(fn) else sync_wrapper
    # The wrapper takes the wrapped function's globals (its body reads only closure variables): django-ninja
    # resolves the string annotations of an operation (`from __future__ import annotations`) in the
    # __globals__ of the function it is given, here the wrapper.
    code = cast(types.FunctionType, wrapper)
    rebound = types.FunctionType(code.__code__, fn.__globals__, fn.__name__, None, code.__closure__)
    return cast(F, functools.update_wrapper(rebound, fn))


class _ScopeManager:
    """`with replica_reads(user=...):` — a scope around a block. It cannot run the block again when the
    replica fails under it: prefer the decorator or `replica_reads(fn, user=...)(...)`."""

    def __init__(self, user: Any) -> None:
        self._user = user
        self._token: Any = None

    def __call__(self, fn: F) -> F:
        return _decorate(fn, self._user)

    def __enter__(self) -> None:
        if _SCOPE.get() is None:  # nested: the outer scope decided
            self._token = _SCOPE.set(_Scope(replica=_may_use_replica(None, self._user)))

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _SCOPE.reset(self._token)
            self._token = None


def replica_reads(fn: Callable | None = None, /, *, user: Any = None) -> Any:
    """A replica-read scope: `@replica_reads` on a view or a django-ninja operation (below the route
    decorator), `replica_reads(fn, user=actor)(...)` around a service call, or `with replica_reads(...)`.

    `user` (a user or an id) is whose writes pin the reads to the primary; by default the request's
    user. The decorator forms run the function again on the primary when the replica's connection
    fails under it, so they must wrap reads only.
    """
    if fn is not None:
        return _decorate(fn, user)
    return _ScopeManager(user)


class ReplicaRouter:
    """settings.DATABASE_ROUTERS when a replica is configured; see the module's docstring."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        scope = _SCOPE.get()
        if scope is None or not scope.replica or scope.wrote:
            return DEFAULT
        if model._meta.app_label in ALWAYS_PRIMARY or connections[DEFAULT].in_atomic_block:
            return DEFAULT
        scope.used = True
        return REPLICA

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        if model._meta.label_lower not in NOT_PINNING:
            scope, state = _SCOPE.get(), _REQUEST.get()
            if scope is not None:
                scope.wrote = True
            if state is not None:
                state.wrote = True
        return DEFAULT

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # one database, two servers

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        return db == DEFAULT


def status() -> dict[str, Any]:
    """This process's view of the replica (for logs and tests)."""
    verdict = HEALTH.verdict() if configured() else Verdict(UNKNOWN, None, 0.0, "no replica configured")
    return {"state": verdict.state, "lag": verdict.lag, "detail": verdict.detail}


__all__ = [
    "HEALTH",
    "PinMiddleware",
    "ReplicaRouter",
    "is_pinned",
    "pin",
    "replica_reads",
    "status",
]
