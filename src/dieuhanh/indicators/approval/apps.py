from django.apps import AppConfig


class ApprovalConfig(AppConfig):
    name = "dieuhanh.indicators.approval"
    label = "approval"
    verbose_name = "Phê duyệt số liệu"
