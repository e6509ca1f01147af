"""The pages' language: Vietnamese for every official, whatever the browser asks for.

Django's LocaleMiddleware follows the browser's Accept-Language, so an official whose browser is
English got an English room. Here the browser is never asked: a signed-in user's own choice (kept on
the user, so it follows them to every device), else the choice made on this browser before signing in
(the language cookie), else Vietnamese.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.views.i18n import set_language

from dieuhanh.accounts.models import User


def chosen_language(request: HttpRequest) -> str:
    known = dict(settings.LANGUAGES)
    # The API is not a page: its callers are machines or the pages' own scripts, which carry the cookie;
    # reading the user for it would cost a session and a user query per call.
    if not request.path.startswith("/api/"):
        user = getattr(request, "user", None)
        if isinstance(user, User) and user.is_authenticated and user.language in known:
            return user.language
    cookie = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
    return cookie if cookie in known else settings.LANGUAGE_CODE


class LanguageMiddleware:
    """In place of Django's LocaleMiddleware, after AuthenticationMiddleware (it reads the user)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        language = chosen_language(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        patch_vary_headers(response, ("Cookie",))
        return response


def choose_language(request: HttpRequest) -> HttpResponse:
    """Django's set_language (the cookie, the redirect), and for a signed-in user, their choice kept."""
    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        # Django would take any language it has a catalogue of (French…); only ours are offered.
        form = request.POST.copy()
        form.pop("language", None)
        request.POST = form  # type: ignore[assignment]
    response = set_language(request)
    user = getattr(request, "user", None)
    chosen = request.method == "POST" and language in dict(settings.LANGUAGES)
    if chosen and isinstance(user, User) and user.is_authenticated and user.language != language:
        User.objects.filter(pk=user.pk).update(language=language)
    return response
