from django.apps import AppConfig


class DirectivesConfig(AppConfig):
    name = "dieuhanh.directives"
    label = "directives"
    verbose_name = "Chỉ đạo và nhiệm vụ"
    _listening = False  # ready() may run more than once; each listener must be registered once

    def ready(self) -> None:
        from dieuhanh.directives import followup, live, quality_assignments, services
        from dieuhanh.indicators.quality.rules import violations_resolved

        if DirectivesConfig._listening:
            return
        DirectivesConfig._listening = True
        # After each verb's commit: push the change to live inboxes, queue the messages it calls for.
        services.on_change(live.on_directive_change)
        services.on_change(followup.on_directive_change)
        # A violation found fixed closes the task made of it (issue 19); dispatch_uid: connected once.
        violations_resolved.connect(
            quality_assignments.close_fixed_tasks, dispatch_uid="quality.close_fixed_tasks"
        )
