"""The baseline of bench/load.py: the morning's calls as a minimal Django app would serve them.

One module, served by uvicorn exactly as `dieuhanh serve` serves ours (same workers, uvloop,
httptools), with Django's ASGI handler, no installed apps and no middleware, the same PostgreSQL
connection pool (psycopg_pool: DIEUHANH_DB_POOL_SIZE, DIEUHANH_DB_POOL_TIMEOUT) and the same bound on
requests in Django at once (DIEUHANH_WEB_CONCURRENCY, then 503 + Retry-After). Its views send, by hand,
the statements the work needs and nothing else:

- every call: the bearer token by its SHA-256 joined to its user (and the once-a-minute last-used
  UPDATE, as ours), and the caller's grants with their units;
- GET /api/v1/inbox: the unread count, and the first page (50) of the caller's deliveries and those
  escalated from the units below, urgent first then newest, in one query with the directive, the
  units, the people named, the overdue flag and the revisions, attachments and responses (json_agg);
- GET /api/v1/deliveries/{id}: marks it read (one guarded UPDATE and an audit row, in a
  transaction, when it is still unread), then the delivery as the inbox shows it;
- POST /api/v1/deliveries/{id}/ack: one guarded UPDATE (the caller's unit, not yet acknowledged, the
  directive not cancelled) and an audit row in a transaction, then the delivery; 409 when already done;
- GET /api/v1/me: the user and their grants (the roots of what they see, from the grants read).

No live events, no replica routing, no OpenAPI schema validation. Run it as bench/load.py does:

    DIEUHANH_DATABASE_URL=postgresql://… uvicorn load_baseline:application --app-dir bench \
        --workers N --loop uvloop --http httptools --lifespan off
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import dj_database_url
import django
from django.conf import settings

POOL_SIZE = int(os.environ.get("DIEUHANH_DB_POOL_SIZE", 8))
POOL_TIMEOUT = float(os.environ.get("DIEUHANH_DB_POOL_TIMEOUT", 5))
CONCURRENCY = int(os.environ.get("DIEUHANH_WEB_CONCURRENCY", POOL_SIZE))
RETRY_AFTER = 2
LAST_USED_RESOLUTION = timedelta(minutes=1)
PAGE = 50

_database = dict(dj_database_url.parse(os.environ["DIEUHANH_DATABASE_URL"], conn_max_age=0))
_database["OPTIONS"] = {
    "pool": {"min_size": 1, "max_size": POOL_SIZE, "timeout": POOL_TIMEOUT, "max_idle": 60}
}
settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-load-baseline",  # noqa: S106 - signs nothing
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[],
    MIDDLEWARE=[],
    USE_TZ=True,
    TIME_ZONE="Asia/Ho_Chi_Minh",
    DATABASES={"default": _database},
)
django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402 - after settings
from django.db import connection, transaction  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.http import require_GET, require_POST  # noqa: E402

OVERDUE = """(dir.cancelled_at IS NULL AND dir.deadline < now() AND (
    (d.acknowledged_at IS NULL AND dir.requires_ack) OR (dir.form <> '[]'::jsonb AND d.responded_at IS NULL)
    OR (dir.kind = 'report_request' AND d.responded_at IS NULL)))"""
DELIVERY = f"""
SELECT json_build_object(
    'id', d.id, 'unit', u.edition_id || ':' || u.code, 'unit_name', u.name, 'state', d.state,
    'overdue', {OVERDUE}, 'escalated', d.escalated_at IS NOT NULL, 'sent_at', d.sent_at,
    'read_at', d.read_at, 'acknowledged_at', d.acknowledged_at,
    'acknowledged_by', coalesce(nullif(ack.full_name, ''), ack.username), 'responded_at', d.responded_at,
    'last_error', d.last_error,
    'directive', json_build_object(
        'id', dir.id, 'number', dir.number, 'title', dir.title, 'body', dir.body, 'kind', dir.kind,
        'priority', dir.priority, 'issuer_unit', iu.edition_id || ':' || iu.code, 'issuer_name', iu.name,
        'issued_by', coalesce(nullif(ib.full_name, ''), ib.username), 'issued_at', dir.issued_at,
        'requires_ack', dir.requires_ack, 'deadline', dir.deadline, 'late_answers', dir.late_answers,
        'form', dir.form, 'targets', dir.targets, 'edition', dir.edition_id, 'version', dir.version,
        'cancelled_at', dir.cancelled_at,
        'revisions', (SELECT coalesce(json_agg(json_build_object(
                'version', r.version, 'action', r.action, 'changes', r.changes, 'note', r.note,
                'by', coalesce(nullif(rb.full_name, ''), rb.username), 'at', r.at) ORDER BY r.version), '[]')
            FROM directives_revision r LEFT JOIN accounts_user rb ON rb.id = r.by_id
            WHERE r.directive_id = dir.id),
        'attachments', (SELECT coalesce(json_agg(json_build_object(
                'id', a.id, 'name', a.name, 'content_type', a.content_type, 'size', a.size,
                'url', '/api/v1/attachments/' || a.id)), '[]')
            FROM directives_attachment a WHERE a.directive_id = dir.id),
        'status', NULL),
    'responses', (SELECT coalesce(json_agg(json_build_object(
            'version', x.version, 'text', x.text, 'figures', x.figures,
            'by', coalesce(nullif(xb.full_name, ''), xb.username), 'at', x.at) ORDER BY x.version), '[]')
        FROM directives_response x LEFT JOIN accounts_user xb ON xb.id = x.by_id WHERE x.delivery_id = d.id))
FROM directives_delivery d
JOIN directives_directive dir ON dir.id = d.directive_id
JOIN units_unit u ON u.id = d.unit_id
JOIN units_unit iu ON iu.id = dir.issuer_unit_id
LEFT JOIN accounts_user ib ON ib.id = dir.issued_by_id
LEFT JOIN accounts_user ack ON ack.id = d.acknowledged_by_id
"""
RECIPIENT_ROLES = ["leader", "analyst", "operator", "admin"]


class Caller:
    def __init__(self, user: tuple, grants: list[tuple]):
        self.id, self.username, self.full_name, self.kind = user
        self.grants = grants  # (unit id, role, edition, code, name, path, kind)
        self.own = [g[0] for g in grants if g[1] in RECIPIENT_ROLES]


def _problem(status: int, detail: str) -> HttpResponse:
    body = {"type": "about:blank", "status": status, "detail": detail}
    return HttpResponse(json.dumps(body), status=status, content_type="application/problem+json")


def _json(data: Any) -> HttpResponse:
    return HttpResponse(json.dumps(data, ensure_ascii=False, default=str), content_type="application/json")


def _caller(request: HttpRequest) -> Caller | None:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.id, t.last_used_at, u.id, u.username, u.full_name, u.kind FROM accounts_apitoken t "
            "JOIN accounts_user u ON u.id = t.user_id "
            "WHERE t.key_hash = %s AND t.revoked_at IS NULL AND u.is_active LIMIT 1",
            [hashlib.sha256(raw.strip().encode()).hexdigest()],
        )
        row = cursor.fetchone()
        if row is None:
            return None
        now = datetime.now(UTC)
        if row[1] is None or now - row[1] > LAST_USED_RESOLUTION:
            cursor.execute("UPDATE accounts_apitoken SET last_used_at = %s WHERE id = %s", [now, row[0]])
        cursor.execute(
            "SELECT g.unit_id, g.role, u.edition_id, u.code, u.name, u.path, u.kind FROM accounts_grant g "
            "JOIN units_unit u ON u.id = g.unit_id WHERE g.user_id = %s ORDER BY u.path, g.role",
            [row[2]],
        )
        return Caller(row[2:], cursor.fetchall())


def _authenticated(view):
    def wrapped(request: HttpRequest, **kwargs):
        caller = _caller(request)
        if caller is None:
            return _problem(401, "Missing or invalid token")
        return view(request, caller, **kwargs)

    return wrapped


def _audit(cursor, caller: Caller, action: str, target: str) -> None:
    cursor.execute(
        "INSERT INTO accounts_auditentry (at, actor_id, actor_name, action, target, rows, detail) "
        "VALUES (now(), %s, %s, %s, %s, NULL, '{}')",
        [caller.id, caller.username, action, target],
    )


def _delivery(cursor, delivery_id: int, caller: Caller) -> dict | None:
    cursor.execute(DELIVERY + "WHERE d.id = %s AND d.unit_id = ANY(%s)", [delivery_id, caller.own])
    row = cursor.fetchone()
    return None if row is None else row[0]


@require_GET
@_authenticated
def inbox(request: HttpRequest, caller: Caller) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM directives_delivery WHERE unit_id = ANY(%s) AND state = 'sent'",
            [caller.own],
        )
        (unread,) = cursor.fetchone()
        cursor.execute(
            # The units below as an array (an InitPlan): both branches then use the unit_id index.
            DELIVERY + "WHERE d.unit_id = ANY(%s) OR (d.escalated_at IS NOT NULL AND d.unit_id = ANY(ARRAY("
            "SELECT id FROM units_unit WHERE parent_id = ANY(%s)))) "
            "ORDER BY dir.priority, d.sent_at DESC, d.id DESC LIMIT %s",
            [caller.own, caller.own, PAGE],
        )
        items = [row[0] for row in cursor.fetchall()]
    return _json({"unread": unread, "items": items})


@require_GET
@_authenticated
def open_delivery(request: HttpRequest, caller: Caller, delivery_id: int) -> HttpResponse:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE directives_delivery SET state = 'read', read_at = now(), read_by_id = %s "
            "WHERE id = %s AND state = 'sent' AND unit_id = ANY(%s)",
            [caller.id, delivery_id, caller.own],
        )
        if cursor.rowcount:
            _audit(cursor, caller, "directives.read", f"delivery:{delivery_id}")
    with connection.cursor() as cursor:
        found = _delivery(cursor, delivery_id, caller)
    return _problem(404, f"no delivery #{delivery_id} for you") if found is None else _json(found)


@require_POST
@_authenticated
def acknowledge(request: HttpRequest, caller: Caller, delivery_id: int) -> HttpResponse:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE directives_delivery d SET read_at = coalesce(d.read_at, now()), "
            "read_by_id = coalesce(d.read_by_id, %s), acknowledged_at = now(), acknowledged_by_id = %s, "
            "state = CASE WHEN d.state IN ('sent', 'read') THEN 'acknowledged' ELSE d.state END "
            "FROM directives_directive dir WHERE dir.id = d.directive_id AND dir.cancelled_at IS NULL "
            "AND d.id = %s AND d.unit_id = ANY(%s) AND d.acknowledged_at IS NULL",
            [caller.id, caller.id, delivery_id, caller.own],
        )
        if cursor.rowcount:
            _audit(cursor, caller, "directives.acknowledge", f"delivery:{delivery_id}")
        acknowledged = cursor.rowcount
    with connection.cursor() as cursor:
        found = _delivery(cursor, delivery_id, caller)
    if found is None:
        return _problem(404, f"no delivery #{delivery_id} for you")
    return _json(found) if acknowledged else _problem(409, "already acknowledged, or cancelled")


@require_GET
@_authenticated
def me(request: HttpRequest, caller: Caller) -> HttpResponse:
    everything = any(g[6] == "nation" for g in caller.grants)
    roots = sorted({(g[2], g[5], f"{g[2]}:{g[3]}") for g in caller.grants})
    return _json(
        {
            "username": caller.username,
            "full_name": caller.full_name,
            "kind": caller.kind,
            "grants": [{"unit": f"{g[2]}:{g[3]}", "unit_name": g[4], "role": g[1]} for g in caller.grants],
            "everything": everything,
            "visible_units": [ref for _, _, ref in roots],
        }
    )


def health(request: HttpRequest) -> HttpResponse:
    return _json({"status": "ok"})


urlpatterns = [
    path("api/v1/health", health),
    path("api/v1/me", me),
    path("api/v1/inbox", inbox),
    path("api/v1/deliveries/<int:delivery_id>", open_delivery),
    path("api/v1/deliveries/<int:delivery_id>/ack", acknowledge),
]


class Bounded:
    """At most CONCURRENCY requests in Django at once; one that waits POOL_TIMEOUT s gets 503 (as ours)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.slots is None:
            self.slots = asyncio.Semaphore(CONCURRENCY)
        try:
            await asyncio.wait_for(self.slots.acquire(), POOL_TIMEOUT)
        except TimeoutError:
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"retry-after", str(RETRY_AFTER).encode()), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.release()


application = Bounded(get_asgi_application())
