"""What every page's menu needs to know about the caller."""

from django.http import HttpRequest

from dieuhanh.accounts.models import User


def roles(request: HttpRequest) -> dict[str, bool]:
    user = getattr(request, "user", None)
    if not isinstance(user, User):
        return {"can_trace": False, "can_issue": False, "can_enter": False}
    roles = {g.role for g in user.held()}
    return {
        "can_trace": "tracer" in roles,
        "can_issue": bool(roles & {"leader", "analyst"}),
        "can_enter": bool(roles & {"operator", "admin"}),  # indicators.services.WRITER_ROLES
    }
