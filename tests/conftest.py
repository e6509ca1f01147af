"""The suite's hooks and settings. The test world (the units, a user per role on them, and the fixtures
every app's tests share) is tests/factories.py, loaded here as a plugin.
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import translation

from dieuhanh.directives.present import forget_histories
from dieuhanh.feedback.services import forget_kept
from dieuhanh.indicators import unitmap
from dieuhanh.indicators.analytics import ANSWERS
from dieuhanh.live import BUS

pytest_plugins = ["tests.factories"]

# The suite is one process, and other runs may share the NATS server: live events stay in the process.
# Tests of the broker's way make a Bus of their own, or start `dieuhanh serve` processes.
BUS.keep_local()


def pytest_report_header(config):
    return f"database: {connection.vendor} ({connection.settings_dict['NAME']})"


@pytest.fixture(autouse=True)
def _no_history_from_another_test():
    # Each test's database is rolled back, and the next reuses its ids (and data version numbers).
    forget_histories()
    ANSWERS.clear()
    unitmap.forget()
    forget_kept()


@pytest.fixture(autouse=True)
def _vietnamese_after():
    # A request with the English cookie leaves English active in the test's thread (the language
    # middleware activates it, nothing deactivates): the next test must start in the default again.
    yield
    translation.activate(django_settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 is slow by design; the tests create users by the dozen.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
