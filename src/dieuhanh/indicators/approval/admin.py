"""Approval in the admin site: the data sets' settings (saved through services.configure, audited); the
approvals, their audit and the lock exceptions read-only (their verbs check levels and write the audit)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from dieuhanh.accounts.admin import ReadOnlyAdmin
from dieuhanh.accounts.models import User
from dieuhanh.indicators.approval import services
from dieuhanh.indicators.approval.models import Approval, ApprovalAudit, DataSetApproval, LockException


@admin.register(DataSetApproval)
class DataSetApprovalAdmin(admin.ModelAdmin):
    list_display = ("data_set", "levels", "expiry_days")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        actor = request.user if isinstance(request.user, User) else None
        services.configure(actor=actor, data_set=obj.data_set, levels=obj.levels, expiry_days=obj.expiry_days)


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = ("data_set", "period", "unit", "approved_by", "approved_at", "accepted_at")
    list_filter = ("data_set", "period")
    list_select_related = ("data_set", "unit", "approved_by")


@admin.register(ApprovalAudit)
class ApprovalAuditAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_name", "action", "data_set", "period", "unit", "reason")
    list_filter = ("action", "data_set")
    list_select_related = ("data_set", "unit")


@admin.register(LockException)
class LockExceptionAdmin(ReadOnlyAdmin):
    list_display = ("data_set", "period", "unit", "state", "requested_at", "ends_on")
    list_filter = ("state", "data_set")
    list_select_related = ("data_set", "unit")
