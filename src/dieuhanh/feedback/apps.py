from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    name = "dieuhanh.feedback"
    label = "feedback"
    verbose_name = "Phản ánh, kiến nghị"
