"""The login forms of the pages and of the admin site, both held to the failed-login lockout."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext

from dieuhanh.accounts.lockout import Lock, client_address, current_lock, record_failure, record_success
from dieuhanh.accounts.models import LoginThrottle


class LoginForm(AuthenticationForm):
    """Django's login form, refusing a locked name or address before any password is checked."""

    lock_message = ""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or not password:
            return super().clean()  # a missing field: the field's own error, no try to count
        client = client_address(self.request)
        if lock := current_lock(username, client):
            raise self._locked(lock)
        try:
            cleaned = super().clean()
        except ValidationError as error:
            if error.code != "invalid_login":
                raise
            if lock := record_failure(username=username, client=client):
                raise self._locked(lock) from None  # the try that reached the limit already says so
            raise
        record_success(username)
        return cleaned

    def _locked(self, lock: Lock) -> ValidationError:
        at = f"{timezone.localtime(lock.until):%H:%M}"
        if lock.scope == LoginThrottle.Scope.ACCOUNT:
            message = gettext(
                "Too many failed logins: this account is locked until %(time)s. Try again then, "
                "or ask an administrator to unlock it."
            )
        else:
            message = gettext(
                "Too many failed logins from this computer: logging in from it is paused until %(time)s."
            )
        self.lock_message = message % {"time": at}
        return ValidationError(self.lock_message, code="locked")


class AdminLoginForm(LoginForm, AdminAuthenticationForm):
    """The admin site's login (staff only), with the same lockout."""
