from django.apps import AppConfig


class TracingConfig(AppConfig):
    name = "dieuhanh.tracing"
    label = "tracing"
    verbose_name = "Truy vết"
