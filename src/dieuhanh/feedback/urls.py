from django.urls import path

from dieuhanh.feedback import official_views, views

urlpatterns = [
    path("", views.form_page, name="feedback-form"),
    path("theo-doi/", views.track_lookup, name="feedback-lookup"),
    path("theo-doi/<str:code>/", views.track_page, name="feedback-track"),
    path("theo-doi/<str:code>/danh-gia/", views.rate_page, name="feedback-rate"),
    path("cong-khai/", views.public_page, name="feedback-public"),
    path("hoi-dap/<int:session_id>/", views.session_page, name="feedback-session"),
    path("xu-ly/", official_views.queue_page, name="feedback-queue"),
    path("xu-ly/<str:code>/", official_views.item_page, name="feedback-item"),
]
