"""The default categories, with HCMC 1022's timers (taken or passed on within 5 minutes, answered
within 5 days); admins change them in the admin site."""

from django.db import migrations

CATEGORIES = [
    ("roads", "Giao thông, đường sá, vỉa hè", "commune"),
    ("lighting", "Chiếu sáng công cộng", "commune"),
    ("waste", "Rác thải, vệ sinh môi trường", "commune"),
    ("drainage", "Thoát nước, ngập úng", "commune"),
    ("public_order", "Trật tự đô thị, lấn chiếm lòng lề đường", "commune"),
    ("security", "An ninh trật tự", "commune"),
    ("construction", "Xây dựng, đất đai", "commune"),
    ("pollution", "Ô nhiễm (tiếng ồn, khói bụi, nước thải)", "commune"),
    ("health", "Y tế, an toàn thực phẩm", "province"),
    ("procedures", "Thủ tục hành chính, dịch vụ công", "commune"),
    ("other", "Khác", "commune"),
]


def add(apps, schema_editor):
    Category = apps.get_model("feedback", "Category")
    for order, (code, name, handler) in enumerate(CATEGORIES):
        Category.objects.update_or_create(
            code=code,
            defaults={"name": name, "handler": handler, "forward_minutes": 5, "answer_days": 5, "order": order},
        )


def remove(apps, schema_editor):
    apps.get_model("feedback", "Category").objects.filter(code__in=[c[0] for c in CATEGORIES]).delete()


class Migration(migrations.Migration):
    dependencies = [("feedback", "0001_initial")]

    operations = [migrations.RunPython(add, remove)]
