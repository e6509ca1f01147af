"""An ID typed in another script's digits is the same person (issue 16, point 9): fullwidth digits
from an East Asian keyboard, Arabic-Indic digits, fullwidth signs and spaces all give the pseudonym
the ASCII form gives, in the one place IDs are normalised; digit-like characters that are not decimal
digits of any script are refused, not kept as a second person."""

from __future__ import annotations

import pytest

from dieuhanh.warehouse.models import HealthDeclaration
from dieuhanh.warehouse.persons import PersonIdError, normalise, person_key
from tests.factories import record

CCCD = "079201001234"
PHONE = "+84912345678"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("０７９２０１００１２３４", CCCD),  # fullwidth digits
        ("٠٧٩٢٠١٠٠١٢٣٤", CCCD),  # Arabic-Indic digits
        ("०७९२०१००१२३४", CCCD),  # Devanagari digits
        ("０７９　２０１　００１２３４", CCCD),  # and fullwidth spaces
        ("＋８４ ９１２ ３４５ ６７８", PHONE),  # a fullwidth plus
        ("０９１２－３４５－６７８", PHONE),  # and fullwidth hyphens
        ("091２ 345 678", PHONE),  # one digit typed in fullwidth
    ],
)
def test_other_scripts_digits_give_the_ascii_forms_pseudonym(typed, expected):
    assert normalise(typed) == expected
    assert person_key(typed) == person_key(expected)


@pytest.mark.parametrize("typed", ["07920100123𐩀", "०७९२०१००१२३𐩀", "079201001234\u0301"])
def test_characters_that_only_look_like_digits_are_refused(typed):
    with pytest.raises(PersonIdError):
        normalise(typed)


def test_a_source_sending_the_id_in_fullwidth_digits_stores_the_same_person(platform):
    ascii_form = record("health", 1, person_id=CCCD)
    fullwidth = record("health", 2, person_id="０７９２０１００１２３４", commune="26740")
    sent = platform.send("health", [ascii_form, fullwidth])
    assert sent.status_code == 200, sent.content
    assert sent.json()["accepted"] == 2
    keys = {bytes(k) for k in HealthDeclaration.objects.values_list("person_key", flat=True)}
    assert keys == {person_key(CCCD)}
