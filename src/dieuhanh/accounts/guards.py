"""Deny by default: a view or API route that serves area data declares it, or others are refused.

`area_aware` says the view filters everything it shows through the caller's area; `public` says it
shows no area data at all (login, health). Anything undeclared is refused to a user whose grants
lie below the nation (AreaGuardMiddleware for pages, api.guard_operations for the API).
"""

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

AREA_AWARE = "dieuhanh_area_aware"
PUBLIC = "dieuhanh_public"


def area_aware(view: F) -> F:
    setattr(view, AREA_AWARE, True)
    return view


def public(view: F) -> F:
    setattr(view, PUBLIC, True)
    return view


def is_declared(view: Callable) -> bool:
    return bool(getattr(view, AREA_AWARE, False) or getattr(view, PUBLIC, False))


def below_nation(user: object) -> bool:
    """True for a signed-in user who does not hold a national grant."""
    area = getattr(user, "area", None)
    return bool(getattr(user, "is_authenticated", False) and callable(area) and not area().everything)
