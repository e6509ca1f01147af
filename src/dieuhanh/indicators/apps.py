from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class IndicatorsConfig(AppConfig):
    name = "dieuhanh.indicators"
    label = "indicators"
    verbose_name = "Chỉ tiêu"

    def ready(self) -> None:
        post_migrate.connect(_install_version_triggers, sender=self)


def _install_version_triggers(using: str = "default", **_: Any) -> None:
    # After every migrate, whatever it rebuilt: see indicators.versions.
    from dieuhanh.indicators import versions

    versions.install(using)
