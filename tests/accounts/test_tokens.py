from dieuhanh.accounts.models import ApiToken, AuditEntry
from dieuhanh.accounts.services import create_token, revoke_token


def test_token_is_stored_hashed_and_shown_once(world):
    token, raw = create_token(actor=world.leader.user, user=world.operator_a.user, name="phone")
    stored = ApiToken.objects.get(pk=token.pk)
    assert raw.startswith("dh_") and len(raw) > 40
    assert raw not in (stored.key_hash, stored.prefix)
    assert not ApiToken.objects.filter(key_hash=raw).exists()
    assert world.operator_a.client().get("/api/v1/me").status_code == 200


def test_revoked_and_unknown_tokens_get_401_problem(world):
    token = ApiToken.objects.get(user=world.operator_a.user)
    revoke_token(actor=world.leader.user, token=token)
    for client in [
        world.operator_a.client(),
        world.operator_a.client().__class__(headers={"Authorization": "Bearer dh_not-a-token"}),
    ]:
        response = client.get("/api/v1/me")
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"
        assert response["WWW-Authenticate"] == "Bearer"
        assert response.json()["status"] == 401


def test_missing_token_is_401_and_health_needs_none(client, world):
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/units").status_code == 401
    assert client.get("/api/v1/health").json() == {"status": "ok"}


def test_a_bad_token_is_not_rescued_by_a_session(world):
    c = world.operator_a.browser()
    assert c.get("/api/v1/me").status_code == 200  # the session alone is enough
    assert c.get("/api/v1/me", headers={"Authorization": "Bearer dh_wrong"}).status_code == 401


def test_changes_are_audited(world):
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "target"))
    assert ("user.create", "benthanh-operator") in actions
    assert ("token.create", "benthanh-operator") in actions
    entry = AuditEntry.objects.filter(action="user.create", target="benthanh-operator").get()
    assert entry.detail["grants"] == ["operator@VN-2025:26743"]


def test_a_token_answers_for_its_user_and_grants_whatever_else_the_user_holds(world):
    """The token, its user and their grants are read in one query: a revoked second token, a user with
    several grants, one with none, and a deactivated one each get what they should."""
    from dieuhanh.accounts.services import create_user, grant_role, user_for_token

    user = world.operator_a.user
    old, old_raw = create_token(actor=None, user=user, name="old phone")
    revoke_token(actor=None, token=old)
    assert user_for_token(old_raw) is None, "a revoked token beside a valid one of the same user"
    grant_role(actor=None, user=user, unit=world.commune_b, role="analyst")
    me = world.operator_a.client().get("/api/v1/me").json()
    assert {(g["unit"], g["role"]) for g in me["grants"]} == {
        (world.commune_a.ref, "operator"),
        (world.commune_b.ref, "analyst"),
    }
    assert me["visible_units"] == sorted([world.commune_a.ref, world.commune_b.ref])

    nobody = create_user(actor=None, username="khong-quyen", password=None)
    _, raw = create_token(actor=None, user=nobody, name="t")
    found = user_for_token(raw)
    assert found == nobody and found.held() == []
    response = (
        world.operator_a.client().__class__(headers={"Authorization": f"Bearer {raw}"}).get("/api/v1/me")
    )
    assert response.status_code == 200 and response.json()["grants"] == []

    user.is_active = False
    user.save()
    assert world.operator_a.client().get("/api/v1/me").status_code == 401


def test_a_tokens_use_is_recorded_at_most_once_a_minute(world):
    from datetime import timedelta

    from django.utils import timezone

    token = ApiToken.objects.get(user=world.operator_a.user)
    client = world.operator_a.client()
    client.get("/api/v1/me")
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    client.get("/api/v1/me")
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    client.get("/api/v1/me")
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first
