"""Feedback test helpers: the default categories (a flushed test database loses migration data)."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from dieuhanh.feedback.models import Category


@pytest.fixture
def categories(world):
    if not Category.objects.exists():
        importlib.import_module("dieuhanh.feedback.migrations.0002_categories").add(apps, None)
        importlib.import_module(
            "dieuhanh.feedback.migrations.0005_merge_followup_sessions"
        ).food_safety_to_agency(apps, None)
    return {c.code: c for c in Category.objects.all()}
