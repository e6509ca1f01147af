"""The admin site shows directives, deliveries, tasks and cases for support work, and changes none of
them: their verbs check the area, audit and announce, which an edited row would not (DESIGN §3)."""

from __future__ import annotations

from django.utils import timezone

from dieuhanh.directives.models import Delivery, Directive
from dieuhanh.tracing.models import Case
from dieuhanh.tracing.services import CaseInput, register_case
from tests.factories import make_caller


def _national_admin(world):
    admin = make_caller("quantri-tw-admin", world.nation, "admin")
    admin.user.is_staff = admin.user.is_superuser = True
    admin.user.save()
    return admin.browser()


def test_a_directive_and_its_deliveries_are_shown_and_cannot_be_changed(world):
    r = world.leader.client().post(
        "/api/v1/directives",
        {
            "title": "Rà soát người về từ vùng dịch",
            "body": "Báo cáo trước 17 giờ.",
            "targets": {"units": [world.commune_a.ref, world.commune_b.ref]},
        },
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    directive = Directive.objects.get(pk=r.json()["id"])
    site = _national_admin(world)
    listing = site.get("/admin/directives/directive/")
    assert listing.status_code == 200 and "Rà soát người về từ vùng dịch" in listing.content.decode()
    page = site.get(f"/admin/directives/directive/{directive.pk}/change/")
    assert page.status_code == 200
    assert world.commune_b.name in page.content.decode()  # its deliveries, inline
    assert site.get("/admin/directives/directive/add/").status_code == 403
    delivery = Delivery.objects.filter(directive=directive).first()
    assert site.post(f"/admin/directives/delivery/{delivery.pk}/delete/", {"post": "yes"}).status_code == 403
    assert site.post(f"/admin/directives/directive/{directive.pk}/change/", {"title": "x"}).status_code == 403
    directive.refresh_from_db()
    assert directive.title == "Rà soát người về từ vùng dịch"
    assert Delivery.objects.filter(pk=delivery.pk).exists()


def test_a_case_shows_its_dates_and_never_its_person(world):
    case = register_case(
        actor=world.tracer.user,
        person_id="079201001234",
        data=CaseInput(confirmed_at=timezone.now(), commune=world.commune_a, note="ở cùng mẹ, số nhà 12"),
    )
    site = _national_admin(world)
    listing = site.get("/admin/tracing/case/").content.decode()
    assert world.commune_a.name in listing
    page = site.get(f"/admin/tracing/case/{case.pk}/change/").content.decode()
    assert world.commune_a.name in page
    key = bytes(case.person_key)
    for text in (listing, page):
        assert "079201001234" not in text and key.hex()[:12] not in text and "số nhà 12" not in text
    assert site.post(f"/admin/tracing/case/{case.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Case.objects.filter(pk=case.pk).exists()
