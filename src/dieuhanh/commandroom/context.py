"""What every page's menu needs to know about the caller."""

from django.http import HttpRequest

from dieuhanh.accounts.models import User


def roles(request: HttpRequest) -> dict[str, bool]:
    user = getattr(request, "user", None)
    if not isinstance(user, User):
        return {"can_trace": False}
    area = user.area(role="tracer")
    return {"can_trace": area.everything or bool(area.prefixes)}
