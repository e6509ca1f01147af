"""What part of the country a caller may see, and the filter that every area query goes through.

An Area is computed once per request from the caller's grants (accounts.scoping.visible_to); here
it is only applied. A grant on the nation sees every edition; any other grant sees its unit's
subtree in that unit's edition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from django.db import models
from django.db.models import Q

if TYPE_CHECKING:
    from dieuhanh.units.models import Unit


@dataclass(frozen=True)
class Area:
    everything: bool
    prefixes: frozenset[tuple[str, str]]  # (edition, path) of each granted subtree

    @classmethod
    def nothing(cls) -> Area:
        return cls(False, frozenset())

    @classmethod
    def union(cls, areas: Iterable[Area]) -> Area:
        """Every unit that any of the areas holds (a user's area over several roles)."""
        areas = list(areas)
        if any(a.everything for a in areas):
            return cls(True, frozenset())
        return cls(False, frozenset().union(*(a.prefixes for a in areas)))

    @classmethod
    def of(cls, unit: Unit) -> Area:
        """The unit's own subtree; the nation's is every map, as a national grant's area is."""
        if unit.level == 0:
            return cls(True, frozenset())
        return cls(False, frozenset({(unit.edition_id, unit.path)}))

    def __bool__(self) -> bool:
        """Whether the area holds anything: `if not area:` is a caller who may see nothing here."""
        return self.everything or bool(self.prefixes)

    def q(self, unit_field: str = "") -> Q:
        """Filter for a queryset whose rows belong to a unit reached through `unit_field`."""
        if self.everything:
            return Q()
        if not self.prefixes:
            return Q(pk__in=[])
        at = f"{unit_field}__" if unit_field else ""
        q = Q()
        for edition, path in sorted(self.prefixes):
            q |= Q(**{f"{at}edition_id": edition, f"{at}path__under": path})
        return q

    def contains(self, unit: Unit) -> bool:
        return self.everything or any(
            unit.edition_id == edition and unit.path.startswith(path) for edition, path in self.prefixes
        )


def area_of(user: object) -> Area:
    """The caller's area; an anonymous caller has none."""
    area = getattr(user, "area", None)
    return area() if callable(area) and getattr(user, "is_authenticated", False) else Area.nothing()


_QS = TypeVar("_QS", bound="AreaQuerySet")


class AreaQuerySet(models.QuerySet):
    """A queryset of rows that belong to a unit; `area_field` names the path to it ('' = the unit)."""

    area_field = ""

    def visible_to(self: _QS, user: object) -> _QS:
        return self.within(area_of(user))

    def within(self: _QS, area: Area | None) -> _QS:
        """Rows inside the area; all rows when there is no area to apply (a system caller)."""
        return self if area is None else self.filter(area.q(self.area_field))


# Deny by default: a view or API route that serves area data declares it, or others are refused.
# `area_aware` says the view filters everything it shows through the caller's area; `metadata` says it
# serves the shared catalogue only (data elements, indicators, data sets, report definitions), the
# same to every signed-in caller; `public` says it shows no area data at all, to anyone (login,
# health). Anything undeclared is refused to a user whose grants
# lie below the nation (accounts.middleware.AreaGuardMiddleware for pages, api.deny_undeclared for
# the API).

F = TypeVar("F", bound=Callable)

AREA_AWARE = "dieuhanh_area_aware"
PUBLIC = "dieuhanh_public"
METADATA = "dieuhanh_metadata"


def area_aware(view: F) -> F:
    setattr(view, AREA_AWARE, True)
    return view


def public(view: F) -> F:
    setattr(view, PUBLIC, True)
    return view


def metadata(view: F) -> F:
    setattr(view, METADATA, True)
    return view


def is_declared(view: Callable) -> bool:
    return any(getattr(view, mark, False) for mark in (AREA_AWARE, METADATA, PUBLIC))


def below_nation(user: object) -> bool:
    """True for a signed-in user who does not hold a national grant."""
    area = getattr(user, "area", None)
    return bool(getattr(user, "is_authenticated", False) and callable(area) and not area().everything)
