"""Confirmed cases in the admin site: counts and dates only, never the person.

A case's person is a pseudonymised key, and every read of person-level data goes through the tracing
routes, which audit it. The admin site therefore shows neither the key nor the note (which a tracer
may have written about the person), and changes nothing: cases are opened, edited and closed by the
tracing verbs.
"""

from __future__ import annotations

from django.contrib import admin

from dieuhanh.accounts.admin import ReadOnlyAdmin
from dieuhanh.tracing.models import Case


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = ("id", "commune", "confirmed_at", "window_start", "window_end", "created_at")
    list_display_links = None
    list_filter = ("confirmed_at",)
    list_select_related = ("commune",)
    fields = ("commune", "confirmed_at", "onset_at", "window_start", "window_end", "created_at", "updated_at")
