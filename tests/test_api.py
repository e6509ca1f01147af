"""The API's contract: problem+json errors, the committed OpenAPI schema."""

import json
from pathlib import Path

from dieuhanh.openapi import schema_text


def test_unknown_unit_is_404_problem(world):
    response = world.leader.client().get("/api/v1/units/VN-2025/99999")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 404 and body["title"] == "Not Found"
    assert "VN-2025:99999" in body["detail"]
    assert body["instance"] == "/api/v1/units/VN-2025/99999"


def test_bad_parameters_are_422_naming_them(world):
    c = world.leader.client()
    for params, name in [
        ({"level": "abc"}, "level"),
        ({"page_size": 0}, "page_size"),
        ({"edition": "VN-1999"}, "edition"),
        ({"kind": "planet"}, "kind"),
    ]:
        response = c.get("/api/v1/units", params)
        assert response.status_code == 422, (params, response.content)
        assert response["Content-Type"] == "application/problem+json"
        body = response.json()
        assert name in body["detail"]
        assert any(e["loc"][-1] == name for e in body["errors"])
    response = c.get("/api/v1/units/VN-1999/79")
    assert response.status_code == 422 and "edition" in response.json()["detail"]
    # A unit reference is checked by units.services.unit_in_area: not a reference is 422 on its field.
    body = c.get("/api/v1/units", {"parent": "VN-2025:"}).json()
    assert (body["status"], body["field"], body["code"]) == (422, "parent", "invalid_unit")


def test_unit_detail_has_ancestors_and_children_count(world):
    body = world.leader.client().get("/api/v1/units/VN-2021/26734").json()
    assert body["ref"] == "VN-2021:26734"
    assert body["kind"] == "commune" and body["level"] == 3
    assert body["parent"] == "VN-2021:760"
    assert [a["ref"] for a in body["ancestors"]] == ["VN-2021:VN", "VN-2021:79", "VN-2021:760"]
    assert body["children_count"] == 0
    province = world.leader.client().get("/api/v1/units/VN-2025/79").json()
    assert province["children_count"] == 168


def test_successors_and_predecessors_carry_weights(world):
    c = world.leader.client()
    successors = c.get("/api/v1/units/VN-2021/26752/successors").json()
    assert len(successors) >= 2 and abs(sum(s["weight"] for s in successors) - 1) < 1e-9
    assert all(s["ref"].startswith("VN-2025:") for s in successors)
    predecessors = c.get("/api/v1/units/VN-2025/26743/predecessors").json()
    assert "VN-2021:26743" in [p["ref"] for p in predecessors]


def test_paging(world):
    c = world.leader.client()
    first = c.get("/api/v1/units", {"edition": "VN-2025", "kind": "province", "page_size": 20}).json()
    second = c.get(
        "/api/v1/units", {"edition": "VN-2025", "kind": "province", "page_size": 20, "page": 2}
    ).json()
    assert first["count"] == second["count"] == 34
    assert len(first["items"]) == 20 and len(second["items"]) == 14
    assert not {i["ref"] for i in first["items"]} & {i["ref"] for i in second["items"]}


def test_api_docs_page_uses_local_assets(client, db):
    page = client.get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()
    assert client.get("/static/ninja/swagger-ui-bundle.js").status_code == 200


def test_committed_openapi_matches_the_api():
    committed = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"
    assert json.loads(committed.read_text()) == json.loads(schema_text()), "run `make openapi` and commit"
