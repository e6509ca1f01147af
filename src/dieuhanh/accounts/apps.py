from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "dieuhanh.accounts"
    label = "accounts"
    verbose_name = "Tài khoản và phân quyền"
