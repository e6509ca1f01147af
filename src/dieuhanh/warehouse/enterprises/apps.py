from django.apps import AppConfig


class EnterprisesConfig(AppConfig):
    name = "dieuhanh.warehouse.enterprises"
    label = "enterprises"
    verbose_name = "Doanh nghiệp, khu công nghiệp"
