"""Who is calling: the signed-in user behind a request."""

from django.http import HttpRequest
from django.utils.translation import gettext as _

from dieuhanh.accounts.models import User


def caller(request: HttpRequest) -> User:
    """The signed-in user of a request that login or API auth has already let through."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionError(_("not signed in"))
    return user
