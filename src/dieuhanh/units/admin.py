from django.contrib import admin

from dieuhanh.units.models import Edition, Succession, Unit


@admin.register(Edition)
class EditionAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "effective_from", "source"]


@admin.register(Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "edition", "kind", "level", "path"]
    list_filter = ["edition", "kind"]
    search_fields = ["search_name", "code", "name"]
    raw_id_fields = ["parent"]


@admin.register(Succession)
class SuccessionAdmin(admin.ModelAdmin):
    list_display = ["old", "new", "weight"]
    raw_id_fields = ["old", "new"]
