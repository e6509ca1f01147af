"""API authentication: a bearer token, or the browser's session (with its CSRF check)."""

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from dieuhanh.accounts.services import user_for_token


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        user = user_for_token(token)
        if user is not None:
            request.user = user
        return user


class Session(SessionAuth):
    """Only when no Authorization header was sent, so a bad token is never rescued by a cookie.

    The CSRF check runs only for a signed-in session: a request with no credentials at all is 401 (what
    the README promises), not "CSRF failed", and a session's POST without its CSRF token stays 403."""

    def __call__(self, request: HttpRequest):
        if request.headers.get("Authorization"):
            return None
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return super().__call__(request)


api_auth = [BearerToken(), Session()]
