from django.contrib import admin
from django.urls import include, path

from dieuhanh.api import api
from dieuhanh.streams import inbox_stream, room_stream

urlpatterns = [
    # The live streams (dieuhanh.streams). The inbox's before the API: ninja would answer its path
    # itself. Streams, not operations of the schema.
    path("api/v1/inbox/stream", inbox_stream, name="inbox-stream"),
    path("room/stream", room_stream, name="room-stream"),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("phan-anh/", include("dieuhanh.feedback.urls")),
    path("", include("dieuhanh.commandroom.urls")),
]
