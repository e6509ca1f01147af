from django.contrib.auth import views as auth_views
from django.urls import path

from dieuhanh.accounts.forms import LoginForm
from dieuhanh.accounts.language import choose_language
from dieuhanh.commandroom import (
    approval_views,
    chart_views,
    directive_views,
    entry_views,
    report_views,
    room_views,
    tracing_views,
    views,
    wall_views,
)
from dieuhanh.commandroom.date_views import check_date
from dieuhanh.commandroom.map_views import room_shapes
from dieuhanh.units.scoping import public

# Held to the failed-login lockout (accounts.lockout), as the admin site's login is.
login = auth_views.LoginView.as_view(template_name="commandroom/login.html", authentication_form=LoginForm)

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", public(login), name="login"),
    path("logout/", public(auth_views.LogoutView.as_view()), name="logout"),
    path("language/", public(choose_language), name="set-language"),
    path("date-check/", check_date, name="date-check"),
    path("room/", room_views.room_page, name="room"),
    path("room/map.json", room_views.room_map, name="room-map"),
    path("room/parts", room_views.room_parts, name="room-parts"),
    path("room/shapes/<str:edition>.json", room_shapes, name="room-shapes"),
    path("room/charts/<slug:name>.json", chart_views.chart_json, name="room-chart"),
    path("room/charts/<slug:name>.csv", chart_views.chart_csv, name="room-chart-csv"),
    path("wall/", wall_views.wall_page, name="wall"),
    path("wall/parts", wall_views.wall_parts, name="wall-parts"),
    path("wall/views.json", wall_views.wall_views, name="wall-views"),
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
    path("directives/new/tree.json", directive_views.compose_tree, name="compose-tree"),
    path(
        "directives/<int:directive_id>/status.json", directive_views.directive_status, name="directive-status"
    ),
    path("directives/<int:directive_id>/", directive_views.directive_page, name="directive"),
    path("reports/", report_views.reports_page, name="reports"),
    path("reports/generate/", report_views.generate, name="reports-generate"),
    path("reports/<int:report_id>/file/", report_views.download, name="report-file"),
    path("entry/", entry_views.entry_list, name="entry"),
    path("entry/<slug:code>/", entry_views.entry_form, name="entry-form"),
    path("entry/<slug:code>/upload/", entry_views.entry_upload, name="entry-upload"),
    path("entry/<slug:code>/approval/", entry_views.entry_approval, name="entry-approval"),
    path("approval/<slug:code>/", approval_views.approval_page, name="approval"),
    path("approval/<slug:code>/act/", approval_views.approval_act, name="approval-act"),
    path("approval/<slug:code>/exceptions/", approval_views.approval_exception, name="approval-exception"),
    path(
        "approval/<slug:code>/exceptions/<int:exception_id>/decision/",
        approval_views.approval_decision,
        name="approval-decision",
    ),
    path("approval/<slug:code>/settings/", approval_views.approval_settings, name="approval-settings"),
]
