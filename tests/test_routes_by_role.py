"""Every API operation and every page, as every role of two neighbouring communes and two provinces,
asked with the other area's ids and unit references: nothing of the other area comes back, and
nothing of it changes.

The walk is generated from the routes (`api._routers` and the URL patterns), in the spirit of
RapidPro's crudl tests: a new route is walked without anyone writing a test for it. What a route is
given comes from its parameters' names and its OpenAPI request body: an id parameter gets the other
area's objects of that name (every other-area id when the name is new), a unit parameter or body field
gets the other area's unit references. Each place holds objects whose text carries a marker of its
own; a caller must never receive a marker of a place outside its area (issue 15, point 6).

A walk with no seen markers would pass trivially, so each caller must also see its own place's
markers somewhere in the walk.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from openpyxl import load_workbook

from dieuhanh.accounts.models import Role
from dieuhanh.api import api
from dieuhanh.directives.models import Delivery, Directive, Task, UnitGroup
from dieuhanh.feedback.models import Category, Feedback, Session
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import PUBLIC
from dieuhanh.units.services import get_unit
from dieuhanh.warehouse.models import Venue
from dieuhanh.warehouse.services import VenueInput, save_venue
from tests.factories import Caller, make_caller

EDITION = "VN-2025"
# Markers are ASCII and unlike anything else in an answer, so a byte search finds them.
MARK = {"A": "MKAZQ1", "B": "MKBZQ2", "C": "MKCZQ3", "P1": "MKPZQ4", "P2": "MKHZQ5"}
# Where each caller stands, and the places whose objects lie outside its area.
PLACES = ("A", "B", "P1", "P2")
# The PostgreSQL pass walks the neighbour and the other province: the same routes and checks, where the
# area filters are SQL of another dialect; the SQLite pass walks all four places (CI's time budget).
WALKED = PLACES if "sqlite" in settings.DATABASES["default"]["ENGINE"] else ("A", "P2")
FORBIDDEN = {"A": {"B", "C", "P2"}, "B": {"A", "C", "P2"}, "P1": {"C", "P2"}, "P2": {"A", "B", "P1"}}
# Whose markers a caller of a place must see somewhere in the walk (the walk is not vacuous).
MUST_SEE = {"A": {"A"}, "B": {"B"}, "P1": {"A", "B"}, "P2": {"C"}}

# The path segment before a parameter → the kind of object the parameter names.
SEGMENT_KINDS = {
    "directives": "directive",
    "deliveries": "delivery",
    "inbox": "delivery",
    "tasks": "task",
    "unit-groups": "group",
    "feedback": "feedback",
    "sessions": "session",  # /feedback/sessions/{session_id}
    "hoi-dap": "session",  # the officials' session page /phan-anh/xu-ly/hoi-dap/<id>/
    "venues": "venue",
    "units": "unit",
}
UNITISH = ("unit", "ou", "owner", "target", "commune", "parent", "park", "province", "place")
# Pages that are not pages: streams never end, the admin site and the API have their own walks.
PARAM = re.compile(r"[{<](?:\w+:)?(\w+)[}>]")

# Values of a few common query parameters that a type alone does not make valid.
BY_NAME = {"pe": "202108", "period": "202108", "periods": "202108", "from": "2021-08-01", "to": "2021-08-31"}
SKIP_PAGES = ("stream", "admin/", "api/v1/", "login/", "logout/", "language/")


@dataclass
class Place:
    unit: Unit
    ids: dict[str, list[int | str]] = field(default_factory=dict)  # kind → pks (codes for feedback, venues)
    codes: list[str] = field(default_factory=list)  # feedback codes, venue codes

    def add(self, kind: str, pk: int | str) -> None:
        self.ids.setdefault(kind, []).append(pk)


@dataclass
class Walk:
    places: dict[str, Place]
    requests: int = 0
    operations: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    leaks: list[str] = field(default_factory=list)


def _hanoi_commune() -> Unit:
    hanoi = get_unit(f"{EDITION}:01")
    return Unit.objects.filter(edition_id=EDITION, parent=hanoi).order_by("code")[0]


def _seed(world, leaders: dict[str, Caller]) -> dict[str, Place]:
    """Objects of every kind in each place, through the same verbs and routes the users call."""
    if not Category.objects.exists():
        import importlib

        importlib.import_module("dieuhanh.feedback.migrations.0002_categories").add(apps, None)
    c = _hanoi_commune()
    places = {
        "A": Place(world.commune_a),
        "B": Place(world.commune_b),
        "C": Place(c),
        "P1": Place(world.province),
        "P2": Place(get_unit(f"{EDITION}:01")),
    }
    due = (timezone.localdate() + timedelta(days=7)).isoformat()
    for key, leader in (("A", leaders["P1"]), ("B", leaders["P1"]), ("C", leaders["P2"])):
        place, mark = places[key], MARK[key]
        r = leader.client().post(
            "/api/v1/directives",
            {"title": f"Chỉ đạo {mark}", "body": f"Nội dung {mark}", "targets": {"units": [place.unit.ref]}},
            content_type="application/json",
        )
        assert r.status_code == 201, r.content
        directive = Directive.objects.get(pk=r.json()["id"])
        place.add("directive", directive.pk)
        for delivery in Delivery.objects.filter(directive=directive):
            place.add("delivery", delivery.pk)
        r = leader.client().post(
            "/api/v1/tasks",
            {"title": f"Nhiệm vụ {mark}", "basis": "Quyết định 1/QĐ", "owner": place.unit.ref, "due": due},
            content_type="application/json",
        )
        assert r.status_code == 201, r.content
        place.add("task", r.json()["id"])
        province = "Thành phố Hồ Chí Minh" if key != "C" else "Thành phố Hà Nội"
        r = Client(REMOTE_ADDR=f"203.0.113.{len(place.codes) + 10 + ord(key)}").post(
            "/api/v1/feedback",
            {
                "category": "lighting",
                "text": f"Đèn đường tắt {mark}",
                "address": f"{place.unit.name}, {province}",
            },
        )
        assert r.status_code == 201, r.content
        assert r.json()["unit"] == place.unit.ref
        place.codes.append(r.json()["code"])
        place.add("feedback", r.json()["code"])
        r = leader.client().post(
            "/api/v1/feedback/sessions",
            {
                "unit": place.unit.ref,
                "title": f"Phiên hỏi đáp {mark}",
                "date": due,
                "topics": [f"Chủ đề {mark}"],
            },
            content_type="application/json",
        )
        assert r.status_code == 201, r.content
        place.add("session", r.json()["id"])
        venue = save_venue(
            actor=None, venue=VenueInput(f"V-WALK-{key}", f"Điểm {mark}", "market", place.unit.code)
        )
        place.codes.append(venue.code)
        place.add("venue", venue.code)
    for key, leader in (("P1", leaders["P1"]), ("P2", leaders["P2"])):
        member = places["A" if key == "P1" else "C"].unit.ref
        r = leader.client().post(
            "/api/v1/unit-groups",
            {
                "code": f"nhom-{MARK[key].lower()}",
                "name": f"Nhóm {MARK[key]}",
                "targets": {"units": [member]},
            },
            content_type="application/json",
        )
        assert r.status_code == 201, r.content
        places[key].add("group", UnitGroup.objects.get(code=r.json()["code"]).pk)
    return places


def _snapshot(places: dict[str, Place], keys: set[str]) -> dict[str, Any]:
    """Every seeded object of the given places, field by field: a write from outside must not change it."""
    models: dict[str, Any] = {
        "directive": Directive,
        "delivery": Delivery,
        "task": Task,
        "group": UnitGroup,
        "session": Session,
    }
    shot: dict[str, Any] = {}
    for key in sorted(keys):
        for kind, pks in places[key].ids.items():
            if kind not in models:
                continue
            for obj in models[kind].objects.filter(pk__in=pks):
                shot[f"{kind}:{obj.pk}"] = model_to_dict(obj)
        for obj in Feedback.objects.filter(code__in=places[key].codes):
            shot[f"feedback:{obj.code}"] = model_to_dict(obj)
        for obj in Venue.objects.filter(code__in=places[key].codes):
            shot[f"venue:{obj.code}"] = model_to_dict(obj)
    return shot


# Generation from the routes


def _operations() -> Iterator[tuple[str, str, Any]]:
    for _prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            for op in path_view.operations:
                for method in op.methods:
                    yield method, path, op


@functools.cache  # the API's routes are fixed once imported; each role's walk reads it
def _schema() -> dict[str, Any]:
    return api.get_openapi_schema()


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in node:
        node = next((n for n in node["anyOf"] if n.get("type") != "null"), node["anyOf"][0])
        return _resolve(schema, node)
    if "allOf" in node and len(node["allOf"]) == 1:
        return _resolve(schema, node["allOf"][0])
    return node


def _fill(schema: dict[str, Any], node: dict[str, Any], name: str, ref: str, pk: int, depth: int = 0) -> Any:
    """A value of the node's type; unit-like names get the other area's unit reference."""
    node = _resolve(schema, node)
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    unitish = any(word in name.lower() for word in UNITISH)
    if kind == "object" or "properties" in node:
        if depth > 4:
            return {}
        props = node.get("properties", {})
        return {
            key: _fill(schema, sub, key if key != "units" else "units", ref, pk, depth + 1)
            for key, sub in props.items()
            if key in node.get("required", []) or any(w in key.lower() for w in UNITISH)
        }
    if kind == "array":
        return [_fill(schema, node.get("items", {}), name, ref, pk, depth + 1)]
    if kind == "integer":
        return pk
    if kind == "number":
        return 1
    if kind == "boolean":
        return True
    if node.get("format") == "date":
        return timezone.localdate().isoformat()
    if node.get("format") == "date-time":
        return timezone.now().isoformat()
    return ref if unitish else "kiểm tra"


def _body(schema: dict[str, Any], method: str, path: str, ref: str, pk: int) -> tuple[str | None, Any]:
    operation = schema["paths"].get(f"/api/v1{path}", {}).get(method.lower(), {})
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        return "application/json", json.dumps(
            _fill(schema, content["application/json"]["schema"], "", ref, pk)
        )
    if "multipart/form-data" in content:
        return None, {}
    return None, None


def _query_params(schema: dict[str, Any], method: str, path: str) -> tuple[dict[str, Any], list[str]]:
    """The required query parameters filled by their types (so that a route gets past its input
    checks to its area check), and the names of the unit-like ones."""
    operation = schema["paths"].get(f"/api/v1{path}", {}).get(method.lower(), {})
    query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
    required = {
        p["name"]: BY_NAME.get(p["name"]) or _fill(schema, p.get("schema", {}), p["name"], "", 1)
        for p in query
        if p.get("required")
    }
    return required, [p["name"] for p in query if any(w in p["name"].lower() for w in UNITISH)]


def _path_params(path: str) -> list[str]:
    """The parameters of an API path ({name}) or a URL pattern (<type:name>), in order."""
    return PARAM.findall(path)


def _candidates(walk: Walk, forbidden: set[str], path: str, param: str) -> list[str]:
    """What a path parameter is given: the other area's objects of the kind its route names (the
    segment before it: /tasks/{task_id} takes tasks); for a kind this walk has not seeded, one object
    of each other place, an id or a code as the name says."""
    places = [walk.places[k] for k in sorted(forbidden)]
    if param == "edition":
        return [EDITION]
    segments = [s for s in path.split("/") if s]
    at = next(i for i, s in enumerate(segments) if param in PARAM.findall(s))
    kind = SEGMENT_KINDS.get(segments[at - 1]) if at else None
    if kind == "unit":
        return [p.unit.code for p in places]
    if kind is not None:
        return [str(v) for p in places for v in p.ids.get(kind, [])]
    if param.endswith("_id") or param == "pk":
        return [str(p.ids["directive"][0]) for p in places if p.ids.get("directive")]
    return [p.unit.code for p in places] + [p.codes[0] for p in places if p.codes]


def _combos(choices: list[list[str]]) -> list[tuple[str, ...]]:
    """Each candidate of each parameter once, the others at their first: every value is tried without
    the product of all of them (a route of two ids would otherwise be asked a hundred times)."""
    if not choices:
        return [()]
    if any(not c for c in choices):
        return []
    first = [c[0] for c in choices]
    combos = {tuple(first)}
    for i, candidates in enumerate(choices):
        combos.update((*first[:i], value, *first[i + 1 :]) for value in candidates)
    return sorted(combos)


def _fill_path(path: str, values: dict[str, str]) -> str:
    return PARAM.sub(lambda m: values[m.group(1)], path)


def _text(response) -> str:
    if getattr(response, "streaming", False):
        content = b"".join(response.streaming_content)
    else:
        content = response.content
    if content[:2] == b"PK":  # an XLSX workbook: its cells are compressed
        book = load_workbook(io.BytesIO(content), read_only=True)
        return " ".join(
            str(cell)
            for sheet in book.worksheets
            for row in sheet.iter_rows(values_only=True)
            for cell in row
        )
    return content.decode("utf-8", "replace")


def _check(walk: Walk, who: str, place: str, what: str, response) -> None:
    walk.requests += 1
    text = _text(response)
    for key, mark in MARK.items():
        if mark not in text:
            continue
        if key in FORBIDDEN[place]:
            walk.leaks.append(f"{who} {what} → {response.status_code} shows {key}'s {mark}")
        else:
            walk.seen.add(f"{who}:{key}")


def _names(walk: Walk, who: str, what: str, response, units: list[Unit]) -> None:
    """A route asked about another area's unit, which answers, says nothing of it: not its name, nor
    a unit below it (by reference)."""
    text = _text(response)
    for unit in units:
        below = Unit.objects.filter(edition_id=unit.edition_id, path__startswith=unit.path).exclude(
            pk=unit.pk
        )
        shown = [unit.name] if unit.name in text else []
        shown += [u.ref for u in below.only("edition_id", "code")[:2000] if f'"{u.ref}"' in text][:3]
        if shown:
            walk.leaks.append(f"{who} {what} → {response.status_code} names {unit.ref}'s {shown}")


def _api_walk(walk: Walk, caller: Caller, who: str, place: str) -> None:
    schema = _schema()
    forbidden = FORBIDDEN[place]
    refs = [walk.places[k].unit.ref for k in sorted(forbidden)]
    other_ids = [
        pk
        for k in sorted(forbidden)
        for pks in walk.places[k].ids.values()
        for pk in pks
        if isinstance(pk, int)
    ]
    client = caller.client()
    for method, path, op in _operations():
        if getattr(op.view_func, PUBLIC, False):
            continue  # shows no area data by declaration (health, categories, a citizen's own code)
        walk.operations.add(f"{method} {path}")
        params = _path_params(path)
        combos = _combos([_candidates(walk, forbidden, path, p) for p in params])
        for n, combo in enumerate(combos):
            url = "/api/v1" + _fill_path(path, dict(zip(params, combo, strict=True)))
            ref, pk = refs[n % len(refs)], other_ids[n % len(other_ids)]
            content_type, body = _body(schema, method, path, ref, pk)
            # Every unit-like query parameter at once, per other place: one request says what each does.
            base, names = _query_params(schema, method, path)
            queries: list[dict[str, Any]] = [
                base,
                *({**base, **{q: r for q in names}} for r in refs if names),
            ]
            for query in queries:
                if method == "GET":
                    response = client.get(url, query)
                    named = [k for k in sorted(forbidden) if walk.places[k].unit.ref in query.values()]
                    if named and 200 <= response.status_code < 300:
                        _names(
                            walk, who, f"GET {url} {query}", response, [walk.places[k].unit for k in named]
                        )
                else:
                    target = url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
                    if content_type:
                        response = client.generic(method, target, body or "", content_type=content_type)
                    elif method == "POST":
                        response = client.post(target, body or {})
                    else:
                        response = client.generic(method, target)
                _check(walk, who, place, f"{method} {url} {query or ''}", response)
                if method != "GET" and params:
                    assert response.status_code >= 400 or not _names_forbidden(walk, forbidden, combo), (
                        f"{who} {method} {url} answered {response.status_code} for another area's object"
                    )


def _names_forbidden(walk: Walk, forbidden: set[str], combo: tuple[str, ...]) -> bool:
    """Whether a value names an object of another area and of no own-area object (ids are shared)."""
    own = {
        str(pk) for k, p in walk.places.items() if k not in forbidden for pks in p.ids.values() for pk in pks
    }
    others = {str(pk) for k in forbidden for pks in walk.places[k].ids.values() for pk in pks}
    others |= {c for k in forbidden for c in walk.places[k].codes}
    return any(value in others and value not in own for value in combo)


def _pages() -> Iterator[str]:
    def walk(patterns: list, prefix: str) -> Iterator[str]:
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and not getattr(p.callback, PUBLIC, False):
                yield prefix + str(p.pattern)  # a public page shows no area data by declaration

    for route in walk(get_resolver().url_patterns, ""):
        if not any(skip in route for skip in SKIP_PAGES):
            yield route


def _page_walk(walk: Walk, caller: Caller, who: str, place: str) -> None:
    forbidden = FORBIDDEN[place]
    refs = [walk.places[k].unit.ref for k in sorted(forbidden)]
    browser = caller.browser()
    for route in _pages():
        walk.operations.add(f"page /{route}")
        params = _path_params(route)
        takes_get = True
        for combo in _combos([_candidates(walk, forbidden, route, p) for p in params]):
            url = "/" + _fill_path(route, dict(zip(params, combo, strict=True)))
            queries: list[dict[str, str]] = [{}, *({"unit": r} for r in refs[:2])]
            for query in queries if takes_get else []:  # the neighbour, the other province
                response = browser.get(url, query)
                _check(walk, who, place, f"GET {url} {query or ''}", response)
                # A form's action that takes only POST says so (405) before it reads its parameters
                # or query: any other object or unit would be refused the same way.
                takes_get = response.status_code != 405
                if not takes_get:
                    break
            if params:
                response = browser.post(url, {})
                _check(walk, who, place, f"POST {url}", response)
                if _names_forbidden(walk, forbidden, combo):
                    assert response.status_code >= 300, f"{who} POST {url} answered {response.status_code}"


# A unit that does not exist: asked for in its place, a route must answer as for another area's unit.
ABSENT_CODE = "99999"


def _unit_routes(schema: dict[str, Any], edition: str, code: str) -> Iterator[tuple[str, str, Any, Any]]:
    """The operations that take a unit (a unit path parameter, a unit-like query parameter or body
    field) and no other object, asked with the unit `edition:code` wherever a unit goes."""
    ref = f"{edition}:{code}"
    for method, path, op in _operations():
        if getattr(op.view_func, PUBLIC, False):
            continue
        params = _path_params(path)
        units = [p for p in params if p != "edition" and _segment_kind(path, p) == "unit"]
        if len(units) + ("edition" in params) != len(params):
            continue  # also names another object: asked with another area's, it stops there
        content_type, body = _body(schema, method, path, ref, 1)
        base, names = _query_params(schema, method, path)
        if not units and not names and ref not in str(body):
            continue
        url = "/api/v1" + _fill_path(path, {"edition": edition, **{p: code for p in units}})
        yield method, url, {**base, **{q: ref for q in names}}, (content_type, body)


def _segment_kind(path: str, param: str) -> str | None:
    segments = [s for s in path.split("/") if s]
    at = next(i for i, s in enumerate(segments) if param in PARAM.findall(s))
    return SEGMENT_KINDS.get(segments[at - 1]) if at else None


def _told(client: Client, method: str, url: str, query: dict[str, Any], body: tuple, code: str) -> tuple:
    """An answer's status and what it tells (a refusal's detail, field and code), the unit's code
    blanked out."""
    content_type, content = body
    if method == "GET":
        response = client.get(url, query)
    else:
        target = url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
        if content_type:
            response = client.generic(method, target, content or "", content_type=content_type)
        else:
            response = (
                client.post(target, content or {}) if method == "POST" else client.generic(method, target)
            )
    told: Any = response.json() if response.get("Content-Type", "").endswith("json") else {}
    if response.status_code >= 400 and isinstance(told, dict):
        told = {k: told.get(k) for k in ("detail", "field", "code")}
    return response.status_code, json.dumps(told, ensure_ascii=False).replace(code, "X")


def _same_for_absent(walk: Walk, callers: dict[str, Caller], place: str) -> int:
    """Every route that takes a unit answers another area's unit exactly as a unit that does not exist
    (docs/decisions.md, "One checked unit look-up"); returns how many routes were asked."""
    other = walk.places[sorted(FORBIDDEN[place])[0]].unit
    schema = _schema()
    theirs = list(_unit_routes(schema, other.edition_id, other.code))
    absent = list(_unit_routes(schema, other.edition_id, ABSENT_CODE))
    for role, caller in callers.items():
        client = caller.client()
        for (method, url, query, body), (_m, absent_url, absent_query, absent_body) in zip(
            theirs, absent, strict=True
        ):
            answer = _told(client, method, url, query, body, other.code)
            expected = _told(client, method, absent_url, absent_query, absent_body, ABSENT_CODE)
            assert answer == expected, f"{role}@{place} {method} {url}: {answer} ≠ no unit's {expected}"
    return len(theirs)


@pytest.fixture(autouse=True)
def _refusals_unlogged(caplog):
    # Thousands of refusals (4xx) are what the walk asks for: django.request logs only server errors.
    caplog.set_level(logging.ERROR, logger="django.request")


@pytest.fixture
def walk(world) -> Walk:
    leaders = {
        "P1": make_caller("seed-p1-leader", world.province, "leader"),
        "P2": make_caller("seed-p2-leader", get_unit(f"{EDITION}:01"), "leader"),
    }
    return Walk(_seed(world, leaders))


@pytest.mark.parametrize("place", WALKED)
def test_every_route_as_every_role_shows_and_changes_nothing_of_another_area(walk, place):
    unit = walk.places[place].unit
    callers = {role: make_caller(f"walk-{place.lower()}-{role}", unit, role) for role in Role.values}
    for role, caller in callers.items():
        who = f"{role}@{place}"
        before = _snapshot(walk.places, FORBIDDEN[place])
        _api_walk(walk, caller, who, place)
        _page_walk(walk, caller, who, place)
        assert _snapshot(walk.places, FORBIDDEN[place]) == before, f"{who} changed another area's objects"
    assert walk.leaks == [], "\n".join(walk.leaks[:30])
    # A commune's callers and a province's: the look-up is one function, its callers differ by area.
    unit_routes = _same_for_absent(walk, callers, place) if place in ("A", "P2") else 0
    # Not vacuous: the walk showed each place's own markers to the callers who may see them.
    for key in MUST_SEE[place]:
        seen_by = {w.split(":")[0] for w in walk.seen if w.endswith(f":{key}")}
        assert seen_by, f"no caller at {place} saw {key}'s objects: the walk proves nothing"
    print(
        f"\n{place}: {len(walk.operations)} routes × {len(callers)} roles, {walk.requests} requests, "
        f"{len(walk.seen)} (caller, place) sightings; {unit_routes} routes that take a unit answer "
        "another area's unit as one that does not exist"
    )
