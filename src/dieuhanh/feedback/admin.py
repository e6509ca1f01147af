from django.contrib import admin

from dieuhanh.feedback.models import Category, Feedback


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "handler", "forward_minutes", "answer_days", "order", "active")
    list_editable = ("forward_minutes", "answer_days", "order", "active")


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    # Read-only: items change through the unit's verbs (audited), never by editing rows here.
    list_display = ("code", "category", "unit", "status", "received_at", "answer_due")
    list_filter = ("status", "category")
    search_fields = ("code",)
    exclude = ("phone_key", "lat", "lon", "address")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
