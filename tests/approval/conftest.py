"""The approval tests' telecom data set has approval on (tests/factories.py: approved_telecom)."""

import pytest


@pytest.fixture
def telecom(approved_telecom):
    return approved_telecom
