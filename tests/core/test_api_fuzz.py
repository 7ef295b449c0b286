"""Schemathesis fuzzes every operation of /api/v1/openapi.json on a live server (issue 8).

Each operation gets a bounded, seeded set of generated requests (valid and invalid), sent over
real HTTP as a role the operation allows. Every answer must be: no 5xx, a documented status
code, a body matching the documented schema with the documented content type, and every error
an RFC 9457 application/problem+json with type, title, status and detail.

The database is seeded with one row of everything (program, stores, tiers, rewards, a customer
with a purchase, a segment, a campaign, a promotion, a geo offer), and about half the generated
path ids are swapped for the id of a real row, so the fuzzer reaches past the 404s.

The routes outside the document (pages, Apple's PassKit web service, the wallet links, provider
webhooks) get odd paths, queries, bodies and headers from Hypothesis; they must never answer 5xx.
"""

from __future__ import annotations

import io
import json
import logging
import os
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from itertools import cycle

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis import checks as st_checks
from werkzeug.routing import BuildError, IntegerConverter

from app.api import api_routes
from app.roles import Role

# Per operation and per mode (valid data, invalid data): `max_examples` requests, derandomized
# so CI sends the same requests every run; POINTCARD_FUZZ_EXAMPLES=200 digs deeper locally.
# No shrinking: each example is an HTTP round trip, and a failure already shows its curl command.
FUZZ_CONFIG = {"generation": {"with-security-parameters": False}}
HYPOTHESIS_SETTINGS = hypothesis.settings(
    max_examples=int(os.environ.get("POINTCARD_FUZZ_EXAMPLES", "15")),
    derandomize=True,
    database=None,
    deadline=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    suppress_health_check=list(hypothesis.HealthCheck),
)
PROBLEM_KEYS = {"type", "title", "status", "detail"}


def errors_are_problem_json(ctx, response, case):
    """Every 4xx and 5xx answer is application/problem+json with the RFC 9457 members."""
    if response.status_code < 400:
        return None
    media_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    assert media_type == "application/problem+json", (
        f"{response.status_code} answered with Content-Type {media_type!r}, not application/problem+json"
    )
    body = response.json()
    assert isinstance(body, dict) and body.keys() >= PROBLEM_KEYS, f"problem body lacks {PROBLEM_KEYS}: {body}"
    assert body["status"] == response.status_code, f"problem status {body['status']} != {response.status_code}"
    assert isinstance(body["detail"], str) and body["detail"], "problem detail is empty"
    return True


CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    errors_are_problem_json,
]


def _seed_rows(world) -> dict[str, int]:
    """One real row of each kind the API has ids for, created through the API itself."""
    admin = world.headers(Role.admin)
    enrolled = world.enroll("Fuzz Customer")
    purchase = world.purchase(enrolled["barcode"], "42.00")
    assert purchase.status_code == 201, purchase.get_json()
    now = datetime.now(UTC)
    created = {}
    for path, body in [
        ("/api/v1/segments", {"name": "Everyone", "rules": {"field": "points", "op": "gte", "value": 0}}),
        (
            "/api/v1/campaigns",
            {
                "name": "Spring",
                "rules": {"field": "points", "op": "gte", "value": 0},
                "channels": ["sms"],
                "templates": {"sms": "Hi {{ first_name }}"},
                "send_at": (now + timedelta(hours=2)).isoformat(),
            },
        ),
        (
            "/api/v1/promotions",
            {
                "name": "Double",
                "multiplier": 2,
                "starts_at": now.isoformat(),
                "ends_at": (now + timedelta(days=7)).isoformat(),
            },
        ),
        (
            "/api/v1/geo-offers",
            {"title": "Near", "store_ids": world.store_ids[:1], "radius_m": 100, "channels": ["push"]},
        ),
    ]:
        response = world.client.post(path, json=body, headers=admin)
        if response.status_code == 201:  # else the fuzzer reports what is wrong with that collection
            created[path] = response.get_json()["id"]
    return {"customer": enrolled["customer_id"], "purchase": purchase.get_json()["transaction_id"], **created}


class Caller:
    """Tokens for the roles an operation allows, taken in turn, and real ids to put in paths."""

    def __init__(self, world, rows: dict[str, int]) -> None:
        self.world, self.rows = world, rows
        self.turns: dict[str, cycle] = {}

    def headers(self, operation) -> dict[str, str]:
        roles = operation.definition.raw.get("x-roles")
        if not roles:
            return {}
        turn = self.turns.setdefault(operation.label, cycle(roles))
        role = Role(next(turn))
        customer_id = self.rows["customer"] if role is Role.customer else None
        return {"Authorization": f"Bearer {self.world.token(role, customer_id=customer_id)}"}

    def real_id(self, path: str, name: str) -> int:
        if name == "customer_id":
            return self.rows["customer"]
        if name == "purchase_id":
            return self.rows["purchase"]
        collection = "/".join(path.split("/")[:4])  # /api/v1/<collection>
        return self.rows.get(collection, 1)  # seeded stores, tiers, rewards start at 1

    def aim_at_real_rows(self, case) -> None:
        """Swap about half the generated integer path ids for the id of a real row."""
        for name, value in (case.path_parameters or {}).items():
            if isinstance(value, int) and not isinstance(value, bool) and value % 2 == 0:
                case.path_parameters[name] = self.real_id(case.operation.path, name)


@pytest.fixture
def settings_overrides(apple_certs, fake_google, tmp_path):
    """Both wallets set up (dev Apple certificates, the local fake Google), so their routes run for real.
    Rate limits stay off (conftest's default), so no 429 hides a bug."""
    return {"apple": {"certs_dir": apple_certs}, "google": fake_google.settings(tmp_path / "google-certs")}


@pytest.fixture
def caller(world) -> Caller:
    return Caller(world, _seed_rows(world))


@pytest.fixture
def api_schema(live_server, caller):
    config = schemathesis.Config.from_dict(FUZZ_CONFIG)
    return schemathesis.openapi.from_url(f"{live_server}/api/v1/openapi.json", config=config)


def _fuzz(operation, mode: GenerationMode, caller: Caller) -> str | None:
    """Run one operation's examples; the first failure (unshrunk: each one is an HTTP call), or None."""

    @hypothesis.settings(HYPOTHESIS_SETTINGS)
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        caller.aim_at_real_rows(case)
        case.call_and_validate(headers=caller.headers(case.operation), checks=CHECKS, timeout=30)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        return None  # nothing to make invalid: no parameters and no body
    except (Exception, BaseExceptionGroup) as exc:
        return f"{operation.label} ({mode.value}): {exc}"
    return None


@pytest.mark.slow
def test_every_operation_survives_fuzzing(api_schema, caller, caplog):
    caplog.set_level(logging.WARNING, logger="werkzeug")  # not one line per request
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 50
    failures = [
        failure for operation in operations for mode in GenerationMode if (failure := _fuzz(operation, mode, caller))
    ]
    assert not failures, f"{len(failures)} failing operations:\n\n" + "\n\n".join(failures)


# --- the routes outside the OpenAPI document: pages, wallet protocols, provider webhooks -------
# They answer HTML, passes, redirects or provider formats, so the one rule is: never a 5xx.

PAGE_EXAMPLES = max(4, HYPOTHESIS_SETTINGS.max_examples // 2)


def _page_rules(app) -> list:
    documented = {rule.rule for rule, _ in api_routes(app)} | {"/api/v1/openapi.json"}
    return sorted(
        (rule for rule in app.url_map.iter_rules() if rule.rule not in documented), key=lambda rule: rule.rule
    )


def _argument(rule, name: str, real: dict[str, str]):
    """Odd values for a path argument, and half the time the real one (a card token, a serial)."""
    converter = rule._converters[name]
    if isinstance(converter, IntegerConverter):
        return st.integers(min_value=0, max_value=2**63 - 1)
    limit = getattr(converter, "maxlength", None) or 64
    words = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=min(limit, 40))
    return st.one_of(st.just(real[name]), words) if name in real else words


def _real_pass_values(world, card_url: str) -> tuple[dict[str, str], str]:
    """The path values and the ApplePass authorization of the customer's real pass."""
    card_token = card_url.rsplit("/", 1)[1]
    pkpass = world.client.get(f"/wallet/apple/{card_token}.pkpass")
    assert pkpass.status_code == 200, pkpass.get_data(as_text=True)[:300]
    pass_json = json.loads(zipfile.ZipFile(io.BytesIO(pkpass.get_data())).read("pass.json"))
    values = {
        "card_token": card_token,
        "pass_type_id": pass_json["passTypeIdentifier"],
        "serial_number": pass_json["serialNumber"],
    }
    return values, f"ApplePass {pass_json['authenticationToken']}"


def _bodies():
    text = st.text(max_size=30)
    return st.one_of(
        st.none(),
        st.binary(max_size=200).map(lambda raw: {"data": raw}),
        st.dictionaries(text, text, max_size=5).map(lambda form: {"data": form}),
        st.dictionaries(text, st.one_of(text, st.integers(), st.none()), max_size=5).map(lambda doc: {"json": doc}),
    )


def _fuzz_route(
    rule, method: str, *, base_url: str, adapter, real: dict[str, str], session, authorization: str
) -> str | None:
    """Send one route a bounded set of odd paths, queries and bodies; the first 5xx, or None."""

    @hypothesis.settings(HYPOTHESIS_SETTINGS, max_examples=PAGE_EXAMPLES)
    @hypothesis.given(
        values=st.fixed_dictionaries({name: _argument(rule, name, real) for name in rule.arguments}),
        body=_bodies(),
        query=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3),
        headers=st.sampled_from([{}, {"Authorization": authorization}, {"Authorization": "Bearer x"}]),
    )
    def run(values, body, query, headers):
        try:
            path = adapter.build(rule.endpoint, values, method=method)
        except BuildError:
            hypothesis.reject()  # a value the route's converter refuses never reaches the view
        response = session.request(
            method, base_url + path, params=query, headers=headers, timeout=30, allow_redirects=False, **(body or {})
        )
        assert response.status_code < 500, f"{method} {path} {body}: {response.status_code} {response.text[:300]}"

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        return None
    except (Exception, BaseExceptionGroup) as exc:
        return f"{method} {rule.rule}: {exc}"
    return None


def test_pages_and_protocol_routes_never_answer_5xx(app, live_server, caller, caplog):
    caplog.set_level(logging.WARNING, logger="werkzeug")
    card_url = caller.world.client.post("/api/v1/enroll", json={"name": "Page Fuzz"}).get_json()["card_url"]
    real, authorization = _real_pass_values(caller.world, card_url)
    adapter = app.url_map.bind("127.0.0.1")
    with requests.Session() as session:
        failures = [
            failure
            for rule in _page_rules(app)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
            if (
                failure := _fuzz_route(
                    rule,
                    method,
                    base_url=live_server,
                    adapter=adapter,
                    real=real,
                    session=session,
                    authorization=authorization,
                )
            )
        ]
    assert not failures, f"{len(failures)} failing routes:\n\n" + "\n\n".join(failures)


# --- what the fuzzer found, pinned one by one -------------------------------------------------


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body.keys() >= PROBLEM_KEYS and body["status"] == status
    return body


def test_a_fresh_ledger_entry_answers_every_documented_field(world):
    customer_id = world.enroll()["customer_id"]
    response = world.client.post(
        f"/api/v1/customers/{customer_id}/adjustments",
        json={"points": -5, "reason": "goodwill"},
        headers=world.headers(Role.admin, str(uuid.uuid4())),
    )
    assert response.status_code == 201
    entry = response.get_json()
    # A just-flushed row used to answer only the attributes set in Python, without these.
    assert {"purchase_id": None, "redemption_id": None, "store_id": None, "expires_at": None}.items() <= entry.items()


def test_a_view_answer_that_breaks_its_response_model_is_a_500_not_a_422(world):
    from app.api import endpoint
    from app.loyalty.schemas import TierRead

    @world.app.get("/api/v1/broken-tier")
    @endpoint(roles=None, response=TierRead)
    def broken_tier():
        return {"id": 1, "name": "No threshold"}

    _problem(world.client.get("/api/v1/broken-tier"), 500)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/program", {"signup_bonus": None}, "signup_bonus"),
        ("/api/v1/tiers/1", {"multiplier": None}, "multiplier"),
        ("/api/v1/rewards/1", {"description": None}, "description"),
        ("/api/v1/stores/1", {"address": None}, "address"),
        ("/api/v1/stores/1", {"latitude": None}, "latitude"),
    ],
)
def test_a_patch_null_for_a_column_that_needs_a_value_is_a_422(world, path, body, field):
    problem = _problem(world.client.patch(path, json=body, headers=world.headers(Role.admin)), 422)
    assert problem["field"] == field


def test_a_patch_null_campaign_name_is_a_422(world):
    rows = _seed_rows(world)
    problem = _problem(
        world.client.patch(
            f"/api/v1/campaigns/{rows['/api/v1/campaigns']}", json={"name": None}, headers=world.headers(Role.marketer)
        ),
        422,
    )
    assert problem["field"] == "name"


def test_a_tier_threshold_already_taken_is_a_409(world):
    taken = world.client.get("/api/v1/tiers", headers=world.headers(Role.admin)).get_json()[0]["threshold"]
    _problem(
        world.client.post(
            "/api/v1/tiers", json={"name": "Twin", "threshold": taken}, headers=world.headers(Role.admin)
        ),
        409,
    )
    other = world.client.post(
        "/api/v1/tiers", json={"name": "Other", "threshold": taken + 12345}, headers=world.headers(Role.admin)
    )
    assert other.status_code == 201
    _problem(
        world.client.patch(
            f"/api/v1/tiers/{other.get_json()['id']}", json={"threshold": taken}, headers=world.headers(Role.admin)
        ),
        409,
    )


def test_numbers_too_large_for_the_database_are_client_errors(world):
    admin = world.headers(Role.admin)
    huge = 2**70
    body = _problem(world.client.get(f"/api/v1/messages?customer_id={huge}", headers=admin), 422)
    assert body["type"].endswith("/number-out-of-range")
    _problem(world.client.post("/api/v1/tiers", json={"name": "Huge", "threshold": huge}, headers=admin), 422)
    _problem(world.client.get(f"/api/v1/segments?offset={huge}", headers=admin), 422)
    _problem(world.client.get(f"/api/v1/stores/{huge}", headers=admin), 404)


def test_documented_statuses_the_fuzzer_met(app):
    paths = app.test_client().get("/api/v1/openapi.json").get_json()["paths"]
    assert "401" in paths["/api/v1/auth/token"]["post"]["responses"]  # wrong password
    assert "422" in paths["/api/v1/customers/{customer_id}/tags/{tag}"]["put"]["responses"]  # tag pattern
    assert "409" in paths["/api/v1/tiers"]["post"]["responses"]  # threshold taken


@pytest.mark.parametrize("huge", [2**31, 2**64 + 1])
def test_an_id_no_key_can_hold_is_a_404_for_every_method(world, huge):
    admin = world.headers(Role.admin)
    for method in ("GET", "PATCH", "DELETE"):
        response = world.client.open(f"/api/v1/tiers/{huge}", method=method, json={}, headers=admin)
        assert _problem(response, 404)["detail"]  # not 422 (PostgreSQL's int4) nor 405 (werkzeug)


def test_text_with_a_nul_is_refused_where_the_database_cannot_store_it(world):
    response = world.client.post("/api/v1/pos/scan", json={"barcode": "PC\x00123"}, headers=world.headers(Role.cashier))
    if world.database.is_postgres:  # psycopg refuses NUL in text; that used to be a 500
        assert _problem(response, 422)["type"].endswith("/nul-in-text")
    else:
        _problem(response, 404)  # SQLite stores NUL; no card has that barcode


def test_a_campaign_pointing_at_reward_or_segment_0_is_a_422(world):
    for field in ("reward_id", "segment_id"):
        body = {"name": "Zero", "kind": "reengagement", field: 0}
        problem = _problem(world.client.post("/api/v1/campaigns", json=body, headers=world.headers(Role.marketer)), 422)
        assert problem["field"] == field


def test_a_campaign_patched_to_a_missing_reward_is_a_422(world):
    campaign_id = _seed_rows(world)["/api/v1/campaigns"]
    for field in ("reward_id", "segment_id"):
        problem = _problem(
            world.client.patch(
                f"/api/v1/campaigns/{campaign_id}", json={field: 987654}, headers=world.headers(Role.marketer)
            ),
            422,
        )
        assert problem["field"] == field  # the lookup used to autoflush the bad reference: a 500


def test_a_time_zone_name_too_long_for_a_file_is_a_422(world):
    body = {"name": "Far", "latitude": 1.0, "longitude": 2.0, "timezone": "Europe/" + "x" * 300}
    problem = _problem(world.client.post("/api/v1/stores", json=body, headers=world.headers(Role.admin)), 422)
    assert problem["errors"][0]["field"] == "timezone"  # ZoneInfo's OSError used to be a 500
