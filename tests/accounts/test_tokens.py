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
