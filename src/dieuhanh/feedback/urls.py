from django.urls import path

from dieuhanh.feedback import official_views, session_views, views

urlpatterns = [
    path("", views.form_page, name="feedback-form"),
    path("theo-doi/", views.track_lookup, name="feedback-lookup"),
    path("theo-doi/<str:code>/", views.track_page, name="feedback-track"),
    path("theo-doi/<str:code>/danh-gia/", views.rate_page, name="feedback-rate"),
    path("theo-doi/<str:code>/anh/<int:photo_id>/", views.photo_page, name="feedback-photo"),
    path("cong-khai/", views.public_page, name="feedback-public"),
    path("hoi-dap/<int:session_id>/", views.session_page, name="feedback-session"),
    path("xu-ly/", official_views.queue_page, name="feedback-queue"),
    # Before xu-ly/<code>/: "hoi-dap" is not a report's code.
    path("xu-ly/hoi-dap/", session_views.sessions_page, name="feedback-sessions"),
    path("xu-ly/hoi-dap/<int:session_id>/", session_views.session_admin_page, name="feedback-session-admin"),
    path("xu-ly/<str:code>/", official_views.item_page, name="feedback-item"),
]
