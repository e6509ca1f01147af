"""Administrative units on dated map editions, with a materialised path and old→new succession."""

from __future__ import annotations

from django.db import models
from django.db.models import Lookup
from django.db.models.fields import CharField
from django.utils.translation import gettext_lazy as _

from dieuhanh.units.scoping import AreaQuerySet


class Kind(models.TextChoices):
    NATION = "nation", _("Nation")
    PROVINCE = "province", _("Province")
    DISTRICT = "district", _("District")
    COMMUNE = "commune", _("Commune")
    AGENCY = "agency", _("Agency")
    ENTERPRISE = "enterprise", _("Enterprise")
    INDUSTRIAL_PARK = "industrial_park", _("Industrial park")


# The kinds that make up a map (editions): enterprises, parks and agencies hang below them.
MAP_KINDS = (Kind.NATION, Kind.PROVINCE, Kind.DISTRICT, Kind.COMMUNE)


class Edition(models.Model):
    """A map of the country as it stood from a date: VN-2021 (3 levels), VN-2025 (2 levels)."""

    code = models.CharField(max_length=20, primary_key=True)
    name = models.CharField(max_length=200)
    effective_from = models.DateField()
    levels = models.JSONField(help_text="kinds by level, from the nation down")
    source = models.CharField(max_length=200, help_text="package and version the units came from")

    class Meta:
        ordering = ["effective_from"]

    def __str__(self) -> str:
        return self.code


class PathField(CharField):
    """Materialised path '/VN/79/760/26734/'; `path__under=p` selects the subtree of p."""


@PathField.register_lookup
class Under(Lookup):
    """Subtree by path prefix, answered from an index on every backend.

    SQLite: a path ends with '/', and '0' follows '/' in byte order, so the subtree of p is the
    range [p, p[:-1] + '0'), which the (edition, path) index serves. PostgreSQL compares text in the
    database's locale collation, where such a range is wrong (punctuation is ignored), so there it
    is a LIKE prefix served by the same index built with varchar_pattern_ops.
    """

    lookup_name = "under"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        prefix = self.rhs
        if not isinstance(prefix, str) or not prefix.endswith("/"):
            raise ValueError("path__under takes a path ending with '/'")
        if connection.vendor == "postgresql":
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return f"{lhs} LIKE %s", [*lhs_params, escaped + "%"]
        return f"({lhs} >= %s AND {lhs} < %s)", [*lhs_params, prefix, prefix[:-1] + "0"]


class UnitQuerySet(AreaQuerySet):
    def ref(self, ref: str) -> Unit:
        edition, code = split_ref(ref)
        return self.get(edition_id=edition, code=code)

    def under(self, unit: Unit) -> UnitQuerySet:
        return self.filter(edition_id=unit.edition_id, path__under=unit.path)

    def leaves(self) -> UnitQuerySet:
        """Units where figures are recorded: communes, and the island districts that have no communes.

        Enterprises and industrial parks below a commune do not make it less of a leaf: they are
        counted by their workers and gates (warehouse.enterprises), not as places of the map."""
        return self.filter(level__gte=2, kind__in=MAP_KINDS).exclude(children__kind__in=MAP_KINDS)


class Unit(models.Model):
    edition = models.ForeignKey(Edition, on_delete=models.PROTECT, related_name="units")
    code = models.CharField(max_length=20, help_text="official GSO code; VN for the nation")
    name = models.CharField(max_length=200)
    short_name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    level = models.PositiveSmallIntegerField()
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = PathField(max_length=255)
    lat = models.FloatField(null=True, blank=True)
    lon = models.FloatField(null=True, blank=True)
    area_km2 = models.FloatField(null=True, blank=True)
    search_name = models.CharField(max_length=255, help_text="lower case, without diacritics")

    objects = UnitQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["edition", "code"], name="unit_code_per_edition"),
            # One index for uniqueness and for subtree queries; the opclasses (PostgreSQL only)
            # let it serve LIKE 'prefix%'.
            models.UniqueConstraint(
                fields=["edition", "path"],
                opclasses=["varchar_pattern_ops", "varchar_pattern_ops"],
                name="unit_path_per_edition",
            ),
        ]
        indexes = [
            models.Index(fields=["edition", "level", "kind"], name="unit_edition_level"),
            models.Index(fields=["edition", "parent"], name="unit_edition_parent"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.ref})"

    @property
    def ref(self) -> str:
        return f"{self.edition_id}:{self.code}"


class Succession(models.Model):
    """An old unit's share in a new one: a merge has weight 1, a division splits 1 by area."""

    old = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="successions")
    new = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="precessions")
    weight = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["old", "new"], name="succession_once"),
            models.CheckConstraint(condition=models.Q(weight__gt=0, weight__lte=1), name="succession_weight"),
        ]
        indexes = [models.Index(fields=["new"], name="succession_new")]

    def __str__(self) -> str:
        return f"{self.old.ref} → {self.new.ref} ({self.weight:.4f})"


def split_ref(ref: str) -> tuple[str, str]:
    """'VN-2025:26743' → ('VN-2025', '26743'). Raises ValueError naming the expected form."""
    edition, sep, code = ref.partition(":")
    if not sep or not edition or not code:
        raise ValueError(f"'{ref}' is not a unit reference of the form EDITION:CODE (e.g. VN-2025:79)")
    return edition, code
