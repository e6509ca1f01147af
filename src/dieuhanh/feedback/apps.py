from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    name = "dieuhanh.feedback"
    label = "feedback"
    verbose_name = "Phản ánh, kiến nghị"

    def ready(self) -> None:
        from dieuhanh.directives import followup
        from dieuhanh.feedback.followup import worker_round

        # Reminders and escalation of reports run in the directives' follow-up worker (one worker).
        followup.also_run(worker_round)
