"""Who is calling: the signed-in user behind a request."""

from django.http import HttpRequest

from dieuhanh.accounts.models import User


def caller(request: HttpRequest) -> User:
    """The signed-in user of a request that login or API auth has already let through."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionError("not signed in")
    return user
