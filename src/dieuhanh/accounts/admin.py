from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from dieuhanh.accounts.forms import AdminLoginForm
from dieuhanh.accounts.lockout import unlock
from dieuhanh.accounts.models import ApiToken, AuditEntry, Grant, LoginThrottle, User

# The admin site's own login is held to the same failed-login lockout as the pages' (accounts.lockout).
admin.site.login_form = AdminLoginForm


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only their verbs write (which check the actor's area, audit and announce the change):
    the admin site lists and shows them, and never adds, changes or deletes one. The base of every app's
    such admin (directives, tracing…)."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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


@admin.register(LoginThrottle)
class LoginThrottleAdmin(admin.ModelAdmin):
    """Failed-login counters of the last quarter of an hour; an admin ends a lock with the action."""

    list_display = ["scope", "key", "failures", "window_start", "locked_until"]
    list_filter = ["scope"]
    search_fields = ["key"]
    actions = ["unlock_selected"]

    @admin.action(description=_("Unlock the selected accounts and addresses"))
    def unlock_selected(self, request, queryset):
        unlocked = sum(unlock(actor=request.user, scope=row.scope, key=row.key) for row in queryset)
        self.message_user(
            request,
            ngettext("%(n)d lock ended.", "%(n)d locks ended.", unlocked) % {"n": unlocked},
            messages.SUCCESS,
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # through the audited action only
