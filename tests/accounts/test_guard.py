"""Deny by default: what is not declared area-aware or public is for national users only."""

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory
from ninja import NinjaAPI
from ninja.testing import TestClient

from dieuhanh.api import api, deny_undeclared
from dieuhanh.errors import DomainError
from dieuhanh.units.scoping import METADATA, area_aware, is_declared


def test_every_api_operation_is_declared():
    undeclared = []
    for _prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            undeclared += [
                f"{op.methods} {path}" for op in path_view.operations if not is_declared(op.view_func)
            ]
    assert undeclared == []


def test_an_undeclared_operation_is_refused_below_the_nation(world):
    def undeclared(request):
        return HttpResponse("area data")

    guarded = deny_undeclared(undeclared)
    request = RequestFactory().get("/")
    request.user = world.operator_a.user
    with pytest.raises(DomainError) as refused:
        guarded(request)
    assert refused.value.status == 403
    request.user = world.leader.user
    assert guarded(request).content == b"area data"
    assert deny_undeclared(area_aware(undeclared)) is undeclared


def test_undeclared_api_route_answers_403(world):
    """A real route on an API built like ours, without a declaration, through the same decorator."""
    probe = NinjaAPI(urls_namespace="probe")
    probe.add_decorator(deny_undeclared)

    @probe.get("/secret", auth=None)
    def secret(request):
        return {"data": "national"}

    @probe.exception_handler(DomainError)
    def forbidden(request, exc):
        return probe.create_response(request, {"detail": str(exc)}, status=exc.status)

    client = TestClient(probe)
    assert client.get("/secret", user=world.operator_a.user).status_code == 403
    assert client.get("/secret", user=world.leader.user).json() == {"data": "national"}


def test_undeclared_page_is_refused_below_the_nation(world):
    # The admin site declares nothing: a ward operator is refused before the admin even looks.
    assert world.operator_a.browser().get("/admin/").status_code == 403


def test_a_metadata_route_answers_alike_to_a_commune_and_the_nation(world):
    """`metadata` marks the shared catalogue: it must not vary with the caller's area (else it filters,
    and is area_aware), and it still needs a signed-in caller."""
    marked = [
        path
        for _prefix, router in api._routers
        for path, path_view in router.path_operations.items()
        for op in path_view.operations
        if "GET" in op.methods and getattr(op.view_func, METADATA, False) and "{" not in path
    ]
    assert {"/dataelements", "/indicators", "/datasets", "/report-definitions"} <= set(marked)
    for path in marked:
        commune = world.operator_a.client().get(f"/api/v1{path}")
        nation = world.leader.client().get(f"/api/v1{path}")
        assert commune.status_code == nation.status_code == 200, path
        assert commune.json() == nation.json(), path
        assert Client().get(f"/api/v1{path}").status_code == 401, path
