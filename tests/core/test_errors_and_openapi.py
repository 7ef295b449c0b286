"""Every error is problem+json; the OpenAPI document covers every route."""

import re

import pytest
from openapi_spec_validator import validate

from app.api import api_routes
from app.roles import Role
from app.web.views import PAGE_SECURITY_HEADERS

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def _assert_problem(response, status):
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body.keys() >= PROBLEM_KEYS and body["status"] == status and body["detail"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def test_unknown_paths_and_methods(world):
    _assert_problem(world.client.get("/api/v1/does-not-exist"), 404)
    body = _assert_problem(world.client.delete("/api/v1/enroll"), 405)
    assert "method" in body["detail"].lower()


def test_bodies_that_are_not_json(world):
    headers = world.headers(Role.cashier)
    body = _assert_problem(
        world.client.post(
            "/api/v1/pos/scan", data="barcode=1", headers=headers, content_type="application/x-www-form-urlencoded"
        ),
        415,
    )
    assert "application/json" in body["detail"]
    _assert_problem(
        world.client.post("/api/v1/pos/scan", data="{", headers=headers, content_type="application/json"), 400
    )
    _assert_problem(world.client.post("/api/v1/pos/scan", headers=headers, content_type="application/json"), 400)
    _assert_problem(world.client.post("/api/v1/pos/scan", json=[1, 2], headers=headers), 422)


def test_validation_names_every_offending_field(world):
    body = _assert_problem(
        world.client.post(
            "/api/v1/enroll",
            json={
                "name": "",
                "email": "not-an-email",
                "phone": "12",
                "timezone": "Mars/Olympus",
                "consents": {"sms": "maybe"},
                "surprise": 1,
            },
        ),
        422,
    )
    fields = {error["field"] for error in body["errors"]}
    assert fields == {"name", "email", "phone", "timezone", "consents.sms", "surprise"}
    assert all(error["message"] for error in body["errors"])


def test_conflicts_and_domain_errors(world):
    world.enroll(email="ada@example.com", phone="+33612345678")
    body = _assert_problem(world.client.post("/api/v1/enroll", json={"name": "Ada", "email": "ADA@example.com"}), 409)
    assert body["field"] == "email"
    body = _assert_problem(world.client.post("/api/v1/enroll", json={"name": "A", "phone": "+33 6 12 34 56 78"}), 409)
    assert body["field"] == "phone"


def test_references_to_missing_rows_are_422_not_500(world):
    body = _assert_problem(
        world.client.post(
            "/api/v1/rewards",
            json={"name": "Platinum", "kind": "tier_upgrade", "points_cost": 10, "tier_id": 9999},
            headers=world.headers(Role.admin),
        ),
        422,
    )
    assert body["field"] == "tier_id"
    _assert_problem(world.client.get("/api/v1/stores/9999", headers=world.headers(Role.admin)), 404)


def test_an_unexpected_error_is_a_logged_500_problem_without_a_trace(world, caplog):
    @world.app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    body = _assert_problem(world.client.get("/boom"), 500)
    assert "secret internals" not in body["detail"]
    assert "secret internals" in caplog.text


def test_openapi_lists_every_route_and_method(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    for rule, _ in api_routes(app):
        path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in document["paths"][path], (method, path)
    routes = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")}
    documented = {rule.rule for rule, _ in api_routes(app)} | {"/api/v1/openapi.json"}
    assert routes == documented


def test_openapi_references_resolve_and_describe_bodies(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    schemas = document["components"]["schemas"]

    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                assert node["$ref"].startswith("#/components/schemas/"), node["$ref"]
                yield node["$ref"].rsplit("/", 1)[1]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    assert set(refs(document)) <= schemas.keys()
    purchase = document["paths"]["/api/v1/pos/purchases"]["post"]
    assert purchase["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("PurchaseRequest")
    assert {"name": "Idempotency-Key", "in": "header"}.items() <= purchase["parameters"][0].items()
    assert {"201", "400", "401", "403", "404", "409", "422", "429"} <= purchase["responses"].keys()
    assert set(schemas["PurchaseRequest"]["required"]) == {"barcode", "amount", "currency"}


def test_the_openapi_document_is_valid_openapi(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    validate(document)  # raises, naming the first fault, when it is not valid OpenAPI 3.1
    campaigns = document["paths"]["/api/v1/campaigns"]["get"]
    state = next(p for p in campaigns["parameters"] if p["name"] == "state")
    assert {"$ref": "#/components/schemas/CampaignState"} in state["schema"]["anyOf"]


def test_every_operation_has_a_summary_and_a_description(app):
    """The view's docstring: its first line is the summary, the paragraphs after it the description."""
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    undocumented = [
        f"{method.upper()} {path}: {', '.join(key for key in ('summary', 'description') if not operation.get(key))}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if not (operation.get("summary") and operation.get("description"))
    ]
    assert undocumented == []


def test_a_multipart_upload_is_documented_with_its_binary_part(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    upload = document["paths"]["/api/v1/voice-recordings"]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]
    assert form["schema"] == {"$ref": "#/components/schemas/VoiceRecordingUpload"}
    assert "audio/mpeg" in form["encoding"]["file"]["contentType"]
    assert "1 MiB" in upload["requestBody"]["description"]
    parts = document["components"]["schemas"]["VoiceRecordingUpload"]
    assert parts["properties"]["file"] | {"type": "string", "format": "binary"} == parts["properties"]["file"]
    assert parts["required"] == ["file"] and "title" in parts["properties"]
    assert {"413", "415", "422"} <= upload["responses"].keys()


def test_the_api_reference_page_has_a_policy_of_its_own_and_every_other_page_keeps_the_strict_one(world):
    docs = world.client.get("/docs")
    assert docs.status_code == 200 and docs.mimetype == "text/html"
    policy = docs.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([A-Za-z0-9_-]{16,})'", policy)[1]
    assert f'data-style-nonce="{nonce}"' in docs.get_data(as_text=True)  # Redoc's <style> elements carry it
    assert "worker-src blob:" in policy and "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "://" not in policy
    assert nonce not in world.client.get("/docs").headers["Content-Security-Policy"]  # a fresh one per answer
    assert docs.headers["X-Content-Type-Options"] == "nosniff"
    strict = PAGE_SECURITY_HEADERS["Content-Security-Policy"]
    for path in ("/till", "/dashboard", "/join"):
        assert world.client.get(path).headers["Content-Security-Policy"] == strict, path
    assert "(/docs)" in world.client.get("/api/v1/openapi.json").get_json()["info"]["description"]


class TestRateLimits:
    @pytest.fixture
    def settings_overrides(self):
        return {"rate_limits_enabled": True, "enroll_rate_limit": "3 per minute"}

    def test_public_enrolment_is_rate_limited_per_ip(self, world):
        for n in range(3):
            assert world.client.post("/api/v1/enroll", json={"name": f"P {n}"}).status_code == 201
        body = _assert_problem(world.client.post("/api/v1/enroll", json={"name": "P 4"}), 429)
        assert "3 per 1 minute" in body["detail"]
        other_ip = world.client.post("/api/v1/enroll", json={"name": "P 5"}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
        assert other_ip.status_code == 201


def test_a_consent_without_the_disclosure_shown_is_refused(world):
    body = _assert_problem(world.client.post("/api/v1/enroll", json={"name": "Ada", "consents": {"sms": True}}), 422)
    assert "consent_text" in body["errors"][0]["message"]
    assert world.client.post("/api/v1/enroll", json={"name": "Ada", "consents": {"sms": False}}).status_code == 201


class TestBehindAProxy:
    @pytest.fixture
    def settings_overrides(self):
        return {"proxy_hops": 1, "rate_limits_enabled": True, "enroll_rate_limit": "1 per minute"}

    def test_the_client_address_comes_from_the_proxy_header(self, world):
        first = {"X-Forwarded-For": "203.0.113.7"}
        assert world.client.post("/api/v1/enroll", json={"name": "A"}, headers=first).status_code == 201
        assert world.client.post("/api/v1/enroll", json={"name": "B"}, headers=first).status_code == 429
        other = {"X-Forwarded-For": "203.0.113.8"}
        assert world.client.post("/api/v1/enroll", json={"name": "C"}, headers=other).status_code == 201
