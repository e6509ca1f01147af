"""The one function that answers: which units may this user see."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dieuhanh.units.scoping import Area

if TYPE_CHECKING:
    from dieuhanh.accounts.models import User


def visible_to(user: User, role: str | None = None) -> Area:
    """The union of the user's granted subtrees (of grants of `role` only, when given).

    A grant on the nation sees every edition.
    """
    if not user.is_active:
        return Area.nothing()
    grants = [g for g in user.held() if role is None or g.role == role]
    if any(g.unit.kind == "nation" for g in grants):
        return Area(True, frozenset())
    return Area(False, frozenset((g.unit.edition_id, g.unit.path) for g in grants))
