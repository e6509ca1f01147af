from django.contrib import admin
from django.urls import include, path

from dieuhanh.api import api
from dieuhanh.directives.live import inbox_stream

urlpatterns = [
    # Before the API: ninja would answer this path itself. A stream, not an operation of the schema.
    path("api/v1/inbox/stream", inbox_stream, name="inbox-stream"),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("phan-anh/", include("dieuhanh.feedback.urls")),
    path("", include("dieuhanh.commandroom.urls")),
]
