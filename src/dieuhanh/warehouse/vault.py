"""The identity vault (DESIGN §4): who a person key stands for, sealed, for tracing teams only.

Events carry person keys only. Health declarations are where people give their contact details, so
their ingest also seals each person's normalised ID here (insert-if-absent, in the batch's own
transaction); a tracer registering a case by raw ID does the same through `remember`. `reveal` is
the only way back to an ID, and each call writes one audit row.

A sealed value is AES-256-GCM under settings.VAULT_KEY: a fresh 12-byte nonce, then the ciphertext
of {"id": normalised ID}, with the person key as associated data, so that a value copied onto another
person's row does not open. A value that does not open raises VaultError: never read past silently.

Out of scope: rotating VAULT_KEY (re-sealing every row under a new key). Until that exists, keep the
key (DIEUHANH_VAULT_KEY, or DIEUHANH_HOME/vault_key) and back it up: without it the vault is unreadable.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Iterator, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import connection
from django.utils import timezone

from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import audit
from dieuhanh.warehouse.models import Identity
from dieuhanh.warehouse.persons import normalise, person_key, short

NONCE_BYTES = 12  # the size GCM is specified for; random per value, so the same ID never seals alike
_CHUNK = 900  # keys per IN (…) query: under SQLite's bound-parameter limit


class VaultError(Exception):
    """A sealed value that does not open: tampered with, moved to another person, or another key's."""


def seal(person_id: str) -> tuple[bytes, bytes]:
    """(person key, sealed ID) of a raw citizen ID or mobile number; PersonIdError when it is neither."""
    normalised = normalise(person_id)
    key = person_key(normalised)
    return key, seal_known(key, normalised)


def seal_known(key: bytes, normalised_id: str) -> bytes:
    """Seal an ID already normalised and pseudonymised (the ingest pipeline has both at hand)."""
    nonce = os.urandom(NONCE_BYTES)
    plain = json.dumps({"id": normalised_id}).encode()
    return nonce + _cipher(settings.VAULT_KEY).encrypt(nonce, plain, key)


def unseal(key: bytes, sealed: bytes) -> str:
    """The normalised ID sealed for `key`; VaultError when the value was not sealed for it, intact."""
    try:
        plain = _cipher(settings.VAULT_KEY).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], key)
    except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce
        raise VaultError(
            f"the vault entry of {short(key)} does not open: altered, moved from another person, "
            "or sealed under another VAULT_KEY"
        ) from None
    return json.loads(plain)["id"]


@functools.lru_cache(maxsize=2)
def _cipher(vault_key: bytes) -> AESGCM:
    # By key, so that a changed setting (tests) takes effect; built once, not per value of a batch.
    return AESGCM(vault_key)


def store(entries: Iterable[tuple[bytes, bytes]]) -> None:
    """Insert the (person key, sealed) pairs not in the vault yet, in the caller's transaction.

    An entry already there is kept as it is: a person's ID never changes under their key.
    """
    rows = dict(entries)
    if not rows:
        return
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    table = connection.ops.quote_name(Identity._meta.db_table)
    columns = "person_key, sealed, first_seen, updated_at"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # one statement, not a round trip per person
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT k, s, %s, %s "  # noqa: S608
                "FROM unnest(%s::bytea[], %s::bytea[]) AS u(k, s) ON CONFLICT (person_key) DO NOTHING",
                [now, now, list(rows), list(rows.values())],
            )
        else:
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s) "  # noqa: S608
                "ON CONFLICT (person_key) DO NOTHING",
                [(key, sealed, now, now) for key, sealed in rows.items()],
            )


def remember(person_id: str) -> bytes:
    """Put a raw ID in the vault unless it is there (a tracer registering a case); returns its key."""
    key, sealed = seal(person_id)
    store([(key, sealed)])
    return key


def reveal(*, actor: User, keys: Sequence[bytes], purpose: str) -> dict[bytes, str]:
    """The normalised IDs of those `keys` that are in the vault, by key; writes one audit row.

    It checks no role and no area: the caller decides first that `actor` may see these persons (a
    `tracer` grant over their events' area, DESIGN §5). `purpose` (a case number, a directive, …) is
    required and kept in the audit row with the keys' first digits and how many were found; it must
    not hold the raw ID. Raises VaultError when an entry does not open, before anything is revealed.
    """
    if not purpose.strip():
        raise ValueError("a read of the identity vault needs a purpose")
    wanted = list(dict.fromkeys(bytes(k) for k in keys))
    found = {key: unseal(key, sealed) for key, sealed in _sealed(wanted)}
    audit(
        actor,
        "vault.reveal",
        short(wanted[0]) if len(wanted) == 1 else f"{len(wanted)} persons",
        rows=len(found),
        purpose=purpose.strip(),
        keys=[short(k) for k in wanted],
    )
    return found


def _sealed(keys: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
    for start in range(0, len(keys), _CHUNK):
        rows = Identity.objects.filter(person_key__in=keys[start : start + _CHUNK])
        for key, sealed in rows.values_list("person_key", "sealed"):
            yield bytes(key), bytes(sealed)  # PostgreSQL gives memoryviews
