from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from dieuhanh.accounts.models import ApiToken, AuditEntry, Grant, User


class GrantInline(admin.TabularInline):
    model = Grant
    extra = 0
    raw_id_fields = ["unit"]


@admin.register(User)
class DieuhanhUserAdmin(UserAdmin):
    inlines = [GrantInline]
    list_display = ["username", "full_name", "kind", "is_active", "last_login"]
    fieldsets = (*(UserAdmin.fieldsets or ()), ("Điều hành", {"fields": ("kind", "full_name")}))


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "user", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "key_hash", "created_at", "last_used_at"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "target", "rows"]
    list_filter = ["action"]
    search_fields = ["actor_name", "target"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
