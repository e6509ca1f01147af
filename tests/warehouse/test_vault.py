"""The identity vault: IDs sealed per person, filled by health declarations, read only with an audit row."""

from __future__ import annotations

import json

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.warehouse import vault
from dieuhanh.warehouse.ingest import Pipeline
from dieuhanh.warehouse.kinds import KINDS
from dieuhanh.warehouse.models import Identity
from dieuhanh.warehouse.persons import person_key, short
from tests.factories import CCCD_A, PHONE_B, record

PHONE_B_NORMALISED = "+84912345678"
CCCD_C = "001099000777"  # a person who never declared anything
TABLE = Identity._meta.db_table


def _stored() -> dict[bytes, bytes]:
    return {bytes(k): bytes(s) for k, s in Identity.objects.values_list("person_key", "sealed")}


def _vault_writes(pipeline: Pipeline, records: list[dict], capture) -> int:
    """Ingest one batch, committed as in production; returns how many statements touched the vault."""
    batch = [(n, json.dumps(r).encode()) for n, r in enumerate(records, start=1)]
    with capture(execute=True), CaptureQueriesContext(connection) as queries:
        pipeline.ingest(batch)
    return sum(TABLE in q["sql"] for q in queries.captured_queries)


def test_a_sealed_id_opens_for_its_key_only(db):
    key, sealed = vault.seal("0912 345 678")
    assert key == person_key(PHONE_B)
    assert vault.unseal(key, sealed) == PHONE_B_NORMALISED
    assert vault.seal(PHONE_B)[1] != sealed  # a fresh nonce each time: equal IDs do not look alike
    with pytest.raises(vault.VaultError, match=short(person_key(CCCD_A))):
        vault.unseal(person_key(CCCD_A), sealed)


def test_remember_stores_once_and_reveal_gives_the_normalised_id(world):
    key = vault.remember("079 201 001 234")
    sealed = _stored()[key]
    assert vault.remember(CCCD_A) == key
    assert _stored() == {key: sealed}  # the first sealing is kept
    assert vault.reveal(actor=world.tracer.user, keys=[key], purpose="ca 1") == {key: CCCD_A}


def test_the_database_never_holds_the_raw_id(db):
    vault.remember(CCCD_A)
    vault.remember(PHONE_B)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {TABLE}")  # noqa: S608
        stored = b"|".join(
            bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
            for row in cursor.fetchall()
            for value in row
        )
    for form in (CCCD_A, PHONE_B, PHONE_B_NORMALISED, "912345678", '"id"'):
        assert form.encode() not in stored


@pytest.mark.parametrize("change", ["bit flipped", "moved to another person", "truncated"])
def test_an_altered_or_moved_entry_fails_loudly(world, change):
    key_a, key_b = vault.remember(CCCD_A), vault.remember(PHONE_B)
    sealed_a = _stored()[key_a]
    altered, row = {
        "bit flipped": (sealed_a[:-1] + bytes([sealed_a[-1] ^ 1]), key_a),
        "moved to another person": (sealed_a, key_b),
        "truncated": (sealed_a[:10], key_a),
    }[change]
    Identity.objects.filter(pk=row).update(sealed=altered)
    with pytest.raises(vault.VaultError, match=short(row)):
        vault.reveal(actor=world.tracer.user, keys=[key_a, key_b], purpose="ca 1")
    assert not AuditEntry.objects.filter(action="vault.reveal").exists()  # nothing was revealed


def test_an_entry_sealed_under_another_vault_key_does_not_open(db, settings):
    key, sealed = vault.seal(CCCD_A)
    settings.VAULT_KEY = bytes(32)
    with pytest.raises(vault.VaultError):
        vault.unseal(key, sealed)


def test_health_declarations_fill_the_vault_once_per_person(platform):
    batch = [
        record("health", 1),
        record("health", 2, person_id="079-201-001-234"),
        record("health", 3, person_id=PHONE_B),
        record("health", 4, person_id=CCCD_C, commune="79"),  # rejected: its person stays out
    ]
    assert platform.send("health", batch).json()["accepted"] == 3
    first = _stored()
    assert set(first) == {person_key(CCCD_A), person_key(PHONE_B)}
    assert platform.send("health", batch).json()["duplicates"] == 3
    platform.send("health", [record("health", 5, person_id="+84 912 345 678")])
    assert _stored() == first
    assert {k: vault.unseal(k, s) for k, s in first.items()} == {
        person_key(CCCD_A): CCCD_A,
        person_key(PHONE_B): PHONE_B_NORMALISED,
    }


def test_other_kinds_leave_the_vault_alone(platform, venues):
    with CaptureQueriesContext(connection) as queries:
        for kind in KINDS:
            if kind != "health":
                assert platform.send(kind, [record(kind)]).json()["accepted"] == 1
    assert not Identity.objects.exists()
    assert not [q for q in queries.captured_queries if TABLE in q["sql"]]


def test_a_pipeline_writes_a_person_to_the_vault_once(platform, django_capture_on_commit_callbacks):
    pipeline = Pipeline(platform.source, "health")
    capture = django_capture_on_commit_callbacks
    assert _vault_writes(pipeline, [record("health", 1)], capture) == 1
    both = [record("health", 2), record("health", 3, person_id=PHONE_B)]
    assert _vault_writes(pipeline, both, capture) == 1  # one statement, for PHONE_B only
    assert _vault_writes(pipeline, [record("health", 4, person_id="0912.345.678")], capture) == 0
    assert set(_stored()) == {person_key(CCCD_A), person_key(PHONE_B)}


def test_a_rolled_back_batch_seals_its_persons_again(platform, django_capture_on_commit_callbacks):
    pipeline = Pipeline(platform.source, "health")
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        pipeline.ingest([(1, json.dumps(record("health", 1)).encode())])
        _ = 1 / 0
    assert not Identity.objects.exists()
    assert _vault_writes(pipeline, [record("health", 1)], django_capture_on_commit_callbacks) == 1
    assert set(_stored()) == {person_key(CCCD_A)}


def test_reveal_writes_one_audit_row_without_the_raw_id(world, platform):
    platform.send("health", [record("health", 1), record("health", 2, person_id=PHONE_B)])
    keys = [person_key(CCCD_A), person_key(PHONE_B), person_key(CCCD_C)]
    before = AuditEntry.objects.count()
    found = vault.reveal(actor=world.tracer.user, keys=keys, purpose="danh sách tiếp xúc ca 12")
    assert found == {keys[0]: CCCD_A, keys[1]: PHONE_B_NORMALISED}
    assert AuditEntry.objects.count() == before + 1
    entry = AuditEntry.objects.get(action="vault.reveal")
    assert (entry.actor, entry.rows, entry.target) == (world.tracer.user, 2, "3 persons")
    assert entry.detail == {"purpose": "danh sách tiếp xúc ca 12", "keys": [short(k) for k in keys]}
    logged = json.dumps(list(AuditEntry.objects.values()), default=str)
    for form in (CCCD_A, PHONE_B, PHONE_B_NORMALISED, "912345678"):
        assert form not in logged


def test_reveal_needs_a_purpose(world):
    key = vault.remember(CCCD_A)
    with pytest.raises(ValueError, match="purpose"):
        vault.reveal(actor=world.tracer.user, keys=[key], purpose="  ")
    assert not AuditEntry.objects.filter(action="vault.reveal").exists()
