"""Confirmed cases (F0) that tracing starts from. Contacts are computed on demand, never stored:
they follow the check-ins as they arrive, and a stored list would be stale the minute it was saved."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import AreaQuerySet


class CaseQuerySet(AreaQuerySet):
    area_field = "commune"


class Case(models.Model):
    person_key = models.BinaryField(max_length=32, unique=True, help_text="HMAC of the normalised ID")
    confirmed_at = models.DateTimeField()
    onset_at = models.DateTimeField(null=True, blank=True, help_text="symptom onset, when known")
    window_start = models.DateTimeField(help_text="infectious from")
    window_end = models.DateTimeField(null=True, blank=True, help_text="isolated at; open while empty")
    commune = models.ForeignKey(
        Unit,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="commune of residence (from the request, the positive test or the latest declaration)",
    )
    test_source = models.CharField(max_length=100, blank=True, help_text="source of the promoted test")
    test_event_id = models.CharField(max_length=100, blank=True, help_text="source_event_id of that test")
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CaseQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["confirmed_at"], name="case_confirmed")]

    def __str__(self) -> str:
        # Never the key: a name is printed in logs, the admin site and error pages, none of which audit.
        return f"F0 #{self.pk}"
