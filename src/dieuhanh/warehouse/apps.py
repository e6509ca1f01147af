from django.apps import AppConfig


class WarehouseConfig(AppConfig):
    name = "dieuhanh.warehouse"
    label = "warehouse"
    verbose_name = "Kho dữ liệu chung"
