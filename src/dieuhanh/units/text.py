"""Vietnamese text keys: the same name with or without diacritics folds to one key."""

import re
import unicodedata

_NON_WORD = re.compile(r"[^a-z0-9]+")


def fold(text: str) -> str:
    """'Phường  Bến Thành' → 'phuong ben thanh': no diacritics, lower case, single spaces."""
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return _NON_WORD.sub(" ", text).strip()


def compact(text: str) -> str:
    """fold() without spaces or punctuation: matching key across packages' spellings."""
    return fold(text).replace(" ", "")


def tidy(name: str) -> str:
    """Normalise Unicode, collapse runs of spaces and unify dashes, as packages differ in these."""
    name = unicodedata.normalize("NFC", name).replace("–", "-").replace("’", "'")
    return " ".join(name.split())
