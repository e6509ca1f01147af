"""Directives, deliveries, tasks and groups in the admin site: to look up, never to edit.

Every change to them goes through a verb (issue, update, cancel, acknowledge, respond, report
progress), which checks the actor's area, audits the change and announces it live; a row edited here
would do none of that. So the admin site lists and shows them, for a national admin's support work.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from dieuhanh.accounts.admin import ReadOnlyAdmin
from dieuhanh.directives.models import Delivery, Directive, Notification, Task, UnitGroup


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ("unit", "state", "sent_at", "read_at", "acknowledged_at", "responded_at", "reminders")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Directive)
class DirectiveAdmin(ReadOnlyAdmin):
    list_display = (
        "number",
        "title",
        "kind",
        "priority",
        "issuer_unit",
        "issued_at",
        "deadline",
        "cancelled_at",
    )
    list_filter = ("kind", "priority", "edition")
    search_fields = ("number", "title")
    date_hierarchy = "issued_at"
    list_select_related = ("issuer_unit",)
    inlines = (DeliveryInline,)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("directive", "unit", "state", "sent_at", "acknowledged_at", "responded_at", "reminders")
    list_filter = ("state",)
    search_fields = ("unit__name", "unit__code", "directive__title")
    list_select_related = ("directive", "unit")
    raw_id_fields = ("directive", "unit", "province")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("delivery", "unit", "channel", "purpose", "state", "due_at", "attempts", "last_error")
    list_filter = ("channel", "purpose", "state")
    list_select_related = ("unit",)
    raw_id_fields = ("delivery", "unit")


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = ("title", "owner", "due", "status", "percent")
    list_filter = ("status",)
    search_fields = ("title", "basis")
    list_select_related = ("owner",)


@admin.register(UnitGroup)
class UnitGroupAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "edition", "created_by", "created_at")
    search_fields = ("code", "name")
    filter_horizontal = ("units",)
