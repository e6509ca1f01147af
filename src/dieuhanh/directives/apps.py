from django.apps import AppConfig


class DirectivesConfig(AppConfig):
    name = "dieuhanh.directives"
    label = "directives"
    verbose_name = "Chỉ đạo và nhiệm vụ"
