"""The login page's refusal reads in Vietnamese by default and in English with the English language
cookie (issue 15, point 2)."""

from __future__ import annotations

from django.conf import settings
from django.test import Client


def _try(username: str, address: str, language: str | None = None) -> str:
    client = Client(REMOTE_ADDR=address)
    if language:
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client.post("/login/", {"username": username, "password": "not-the-password"}).content.decode()


def test_a_locked_account_is_told_in_the_readers_language(world):
    name = world.operator_a.user.username
    for _ in range(5):
        _try(name, "10.7.7.7")
    vi, en = _try(name, "10.7.7.8"), _try(name, "10.7.7.9", "en")
    assert "Đăng nhập sai quá nhiều lần: tài khoản này tạm khóa đến" in vi and "Too many" not in vi
    assert "Too many failed logins: this account is locked until" in en and "tạm khóa" not in en
