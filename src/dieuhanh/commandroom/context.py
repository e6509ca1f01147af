"""What every page's menu needs to know about the caller."""

from functools import cache

from django.http import HttpRequest

from dieuhanh.accounts.models import User
from dieuhanh.directives.services import unread_count


def roles(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if not isinstance(user, User):
        return {"can_trace": False, "can_issue": False, "can_enter": False, "inbox_unread": 0}
    roles = {g.role for g in user.held()}
    return {
        "can_trace": "tracer" in roles,
        "can_issue": bool(roles & {"leader", "analyst"}),
        "can_enter": bool(roles & {"operator", "admin"}),  # indicators.services.WRITER_ROLES
        # The menu's unread count (the phone's bar shows it on Hộp thư): counted once, and only when
        # a template reads it (a template calls a callable).
        "inbox_unread": cache(lambda: unread_count(user)),
    }
