from django.apps import AppConfig


class DirectivesConfig(AppConfig):
    name = "dieuhanh.directives"
    label = "directives"
    verbose_name = "Chỉ đạo và nhiệm vụ"

    def ready(self) -> None:
        from dieuhanh.directives import quality_assignments
        from dieuhanh.indicators.quality.rules import violations_resolved

        # A violation found fixed closes the task made of it (issue 19); dispatch_uid: connected once.
        violations_resolved.connect(
            quality_assignments.close_fixed_tasks, dispatch_uid="quality.close_fixed_tasks"
        )
