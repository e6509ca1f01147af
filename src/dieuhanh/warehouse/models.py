"""The common data warehouse: source platforms, QR venues, events (one table per kind) and rollups.

Event tables are append-only. Their foreign keys are not database constraints (db_constraint=False):
the ingest pipeline resolves every id before writing, and DESIGN §7 keeps event tables free of
cross-shard foreign keys so that they can be distributed by person_key.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from dieuhanh.units.models import Edition, Unit
from dieuhanh.units.scoping import AreaQuerySet
from dieuhanh.warehouse.persons import short


class Source(models.Model):
    """A source platform (health declaration app, QR check-in app, lab system, …)."""

    name = models.CharField(max_length=100, unique=True)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="source")
    kinds = models.JSONField(help_text="event kinds this source may send")
    edition = models.ForeignKey(
        Edition,
        on_delete=models.PROTECT,
        related_name="sources",
        help_text="how its bare commune codes are read",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class VenueKind(models.TextChoices):
    MARKET = "market", _("Market")
    SCHOOL = "school", _("School")
    FACTORY = "factory", _("Factory")
    HOSPITAL = "hospital", _("Hospital")
    OFFICE = "office", _("Office")
    TRANSPORT = "transport", _("Transport")
    OTHER = "other", _("Other")


class VenueQuerySet(AreaQuerySet):
    area_field = "commune"


class Venue(models.Model):
    """A place with a QR code (điểm QR) where people check in."""

    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=12, choices=VenueKind.choices)
    commune = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="venues")
    lat = models.FloatField(null=True, blank=True)
    lon = models.FloatField(null=True, blank=True)
    dwell_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="assumed stay when no check-out"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = VenueQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class EventQuerySet(AreaQuerySet):
    area_field = "commune"


class Event(models.Model):
    # No single-column indexes on the foreign keys: the composite indexes below start with them, and
    # every extra index is paid for on each of millions of inserts.
    source = models.ForeignKey(
        Source, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    source_event_id = models.CharField(max_length=100)
    commune = models.ForeignKey(
        Unit, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    at = models.DateTimeField(help_text="the event's own time (time in, declared at, sampled at, …)")
    person_key = models.BinaryField(max_length=32, null=True, help_text="HMAC-SHA256 of the normalised ID")

    objects = EventQuerySet.as_manager()

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(fields=["source", "source_event_id"], name="%(class)s_once_per_source"),
        ]
        indexes = [
            models.Index(fields=["commune", "at"], name="%(class)s_area_time"),
            models.Index(fields=["person_key", "at"], name="%(class)s_person_time"),
        ]

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.source_id}/{self.source_event_id}"


class CheckIn(Event):
    venue = models.ForeignKey(
        Venue, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    time_out = models.DateTimeField(null=True)

    class Meta(Event.Meta):
        # Not the events' (commune, at): nothing reads check-ins by commune (their counts are the
        # rollups', tracing reads them by person and by venue), and it cost a fifth of the raw insert
        # (docs/decisions.md, Warehouse).
        indexes = [
            models.Index(fields=["person_key", "at"], name="checkin_person_time"),
            models.Index(fields=["venue", "at"], name="checkin_venue_time"),
        ]


class HealthDeclaration(Event):
    symptoms = models.PositiveSmallIntegerField(help_text="bit set of the symptom codes, see ingest.SYMPTOMS")
    exposure = models.BooleanField()


class TravelDeclaration(Event):
    """`commune` is the destination (the commune that follows arrivals up)."""

    from_commune = models.ForeignKey(
        Unit, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    arrive_at = models.DateTimeField(null=True)
    mode = models.CharField(max_length=8)


class TestResult(Event):
    method = models.CharField(max_length=8)
    result = models.CharField(max_length=10)


class Vaccination(Event):
    dose = models.PositiveSmallIntegerField()
    vaccine = models.CharField(max_length=60)


class Quarantine(Event):
    end = models.DateTimeField(null=True)
    place = models.CharField(max_length=10)


class IncidentReport(Event):
    category = models.CharField(max_length=40)
    text = models.TextField()


class RollupQuerySet(AreaQuerySet):
    area_field = "commune"


class Rollup(models.Model):
    """Events counted per commune × local day × kind × up to two small dimensions (see ingest.KINDS)."""

    commune = models.ForeignKey(
        Unit, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    day = models.DateField()
    kind = models.CharField(max_length=12)
    dim1 = models.CharField(max_length=40, default="")
    dim2 = models.CharField(max_length=40, default="")
    count = models.BigIntegerField()

    objects = RollupQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["commune", "day", "kind", "dim1", "dim2"], name="rollup_cell"),
        ]
        indexes = [models.Index(fields=["kind", "day"], name="rollup_kind_day")]

    def __str__(self) -> str:
        return f"{self.kind} {self.commune_id} {self.day} {self.dim1}/{self.dim2}: {self.count}"


class RollupMonth(models.Model):
    """The same counts per commune × local month (its first day): what analytics reads for months,
    quarters and years, kept in the ingest transaction beside the daily rollups."""

    commune = models.ForeignKey(
        Unit, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    month = models.DateField(help_text="the first day of the month")
    kind = models.CharField(max_length=12)
    dim1 = models.CharField(max_length=40, default="")
    dim2 = models.CharField(max_length=40, default="")
    count = models.BigIntegerField()

    objects = RollupQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["commune", "month", "kind", "dim1", "dim2"], name="rollupmonth_cell"
            ),
        ]
        indexes = [
            models.Index(fields=["kind", "month"], name="rollupmonth_kind_month"),
            # Analytics' read of one count over every commune: an index-only scan on PostgreSQL.
            models.Index(
                fields=["kind", "dim1", "month"], include=["commune", "count"], name="rollupmonth_analytics"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.commune_id} {self.month:%Y-%m} {self.dim1}/{self.dim2}: {self.count}"


class Identity(models.Model):
    """The identity vault: a person's normalised ID, sealed, for tracing teams (see warehouse.vault).

    Keyed by the person key itself, so that the events' keys find it and a person is in it at most
    once. `sealed` is AES-256-GCM (nonce first) bound to the key: only vault.reveal opens it.
    """

    person_key = models.BinaryField(max_length=32, primary_key=True, help_text="HMAC-SHA256 of the ID")
    sealed = models.BinaryField(help_text='nonce + AES-GCM of {"id": normalised ID}')
    first_seen = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "identities"

    def __str__(self) -> str:
        return f"Identity {short(bytes(self.person_key))}"
