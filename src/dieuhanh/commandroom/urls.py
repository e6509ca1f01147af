from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.i18n import set_language

from dieuhanh.commandroom import directive_views, tracing_views, views
from dieuhanh.units.scoping import public

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/", public(auth_views.LoginView.as_view(template_name="commandroom/login.html")), name="login"
    ),
    path("logout/", public(auth_views.LogoutView.as_view()), name="logout"),
    path("language/", public(set_language), name="set-language"),
    path("units/", views.browse_units, name="units-browse"),
    path("units/<str:edition>/<str:code>/", views.unit_page, name="unit"),
    path("tracing/", tracing_views.workspace, name="tracing"),
    path("tracing/cases/<int:pk>/", tracing_views.case_page, name="tracing-case"),
    path("tracing/cases/<int:pk>/send/", directive_views.send_lists, name="tracing-send"),
    path("inbox/", directive_views.inbox_page, name="inbox"),
    path("inbox/<int:delivery_id>/", directive_views.delivery_page, name="delivery"),
    path("inbox/<int:delivery_id>/ack/", directive_views.acknowledge, name="delivery-ack"),
    path("inbox/<int:delivery_id>/respond/", directive_views.respond, name="delivery-respond"),
    path("directives/new/", directive_views.compose, name="compose"),
    path("directives/<int:directive_id>/", directive_views.directive_page, name="directive"),
]
