from django.apps import AppConfig


class CommandroomConfig(AppConfig):
    name = "dieuhanh.commandroom"
    label = "commandroom"
    verbose_name = "Phòng điều hành"
