from django.http import HttpRequest
from ninja import Router, Schema

from dieuhanh.accounts.guards import caller
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import public

router = Router(tags=["accounts"])


class GrantOut(Schema):
    unit: str
    unit_name: str
    role: str


class MeOut(Schema):
    username: str
    full_name: str
    kind: str
    grants: list[GrantOut]
    everything: bool
    visible_units: list[str]


@router.get("/me", response=MeOut, summary="The caller, their grants and the units they may see")
@public  # shows only what the caller's own grants already name
def me(request: HttpRequest):
    user = caller(request)
    area = user.area()
    grants = [GrantOut(unit=g.unit.ref, unit_name=g.unit.name, role=g.role) for g in user.held()]
    # "The units they may see" as the roots of their subtrees: a nation grant sees all of them; otherwise
    # they are the granted units themselves, already in hand.
    if area.everything:
        roots = list(Unit.objects.filter(kind="nation"))
    else:
        roots = list({g.unit_id: g.unit for g in user.held()}.values())
    return MeOut(
        username=user.username,
        full_name=user.full_name,
        kind=user.kind,
        grants=grants,
        everything=area.everything,
        visible_units=[u.ref for u in sorted(roots, key=lambda u: (u.edition_id, u.path))],
    )
