from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "dieuhanh.indicators.quality"
    label = "quality"
    verbose_name = "Chất lượng số liệu"
