"""Tokens, roles and staff accounts: every route denies the roles it must."""

import base64
import json
from datetime import timedelta

import jwt
import pytest

from app.api import api_routes
from app.auth.models import StaffUser
from app.roles import Role

ALL_ROLES = list(Role)


def _url(rule) -> str:
    return rule.build(dict.fromkeys(rule.arguments, 1), append_unknown=False)[1]


def _routes(app):
    for rule, spec in api_routes(app):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method, spec


def test_every_protected_route_denies_each_role_it_does_not_name(world):
    customer = world.enroll()
    checked = 0
    for rule, method, spec in _routes(world.app):
        if spec.roles is None:
            continue
        url = _url(rule)
        anonymous = world.client.open(url, method=method, json={})
        assert anonymous.status_code == 401, (method, url)
        for role in ALL_ROLES:
            headers = world.headers(role, customer_id=customer["customer_id"])
            response = world.client.open(url, method=method, json={}, headers=headers)
            if role in spec.roles:
                assert response.status_code not in (401, 403), (method, url, role, response.get_json())
            else:
                assert response.status_code == 403, (method, url, role, response.status_code)
                assert response.mimetype == "application/problem+json"
            checked += 1
    assert checked > 100


def test_the_role_table_keeps_staff_and_customers_apart(app):
    roles = {(rule.rule, method): spec.roles for rule, method, spec in _routes(app)}
    assert roles[("/api/v1/pos/purchases", "POST")] == {Role.cashier, Role.admin}
    assert roles[("/api/v1/stores", "POST")] == {Role.admin}
    assert roles[("/api/v1/enroll", "POST")] is None
    assert roles[("/api/v1/me", "GET")] == {Role.customer}
    assert all(Role.customer not in (r or ()) for (path, _), r in roles.items() if not path.startswith("/api/v1/me"))


def _forge(world, **changes):
    settings = world.app.extensions["pointcard"].settings
    claims = jwt.decode(
        world.token(Role.admin), settings.signing_secret(), algorithms=["HS256"], audience=settings.jwt_audience
    )
    claims.update(changes)
    return claims, settings


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _bad_tokens(world):
    claims, settings = _forge(world)
    secret = settings.signing_secret()
    good = world.token(Role.admin)
    head, body, signature = good.split(".")
    yield "alg none", f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{body}."
    yield "expired", world.token(Role.admin, lifetime=timedelta(minutes=-5))
    yield "wrong audience", jwt.encode({**claims, "aud": "another-api"}, secret, algorithm="HS256")
    yield "wrong issuer", jwt.encode({**claims, "iss": "someone-else"}, secret, algorithm="HS256")
    yield "other secret", jwt.encode(claims, "not-the-secret-0123456789abcdefghij", algorithm="HS256")
    yield "tampered body", f"{head}.{_b64({**claims, 'role': 'admin', 'sub': 'user:999'})}.{signature}"
    yield "tampered signature", f"{head}.{body}.{signature[:-4]}AAAA"
    yield "HS512 not allowed", jwt.encode(claims, secret, algorithm="HS512")
    yield "not a jwt", "hello"
    no_exp = {k: v for k, v in claims.items() if k != "exp"}
    yield "no expiry", jwt.encode(no_exp, secret, algorithm="HS256")


def test_bad_tokens_are_rejected_with_401(world):
    for name, token in _bad_tokens(world):
        response = world.client.get("/api/v1/stores", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.mimetype == "application/problem+json", name
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert world.client.get("/api/v1/stores", headers=world.headers(Role.admin)).status_code == 200


def test_a_disabled_or_changed_account_loses_access_at_once(world):
    headers = world.headers(Role.marketer)
    assert world.client.get("/api/v1/rewards", headers=headers).status_code == 200
    with world.database.transaction() as session:
        session.get(StaffUser, world.staff[Role.marketer].id).active = False
    assert world.client.get("/api/v1/rewards", headers=headers).status_code == 401


def test_staff_log_in_with_email_and_password(world):
    password = world.passwords["cashier@example.com"]
    response = world.client.post("/api/v1/auth/token", json={"email": "Cashier@Example.com", "password": password})
    assert response.status_code == 200
    token = response.get_json()
    assert token["role"] == "cashier" and token["expires_in"] == 3600
    scan = world.client.post(
        "/api/v1/pos/scan", json={"barcode": "nope"}, headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert scan.status_code == 404  # authenticated; the barcode is what is unknown
    for email, pw in (("cashier@example.com", "wrong-password"), ("nobody@example.com", password)):
        wrong = world.client.post("/api/v1/auth/token", json={"email": email, "password": pw})
        assert wrong.status_code == 401 and "wrong" in wrong.get_json()["detail"]


def test_the_card_secret_gives_a_customer_token_for_that_customer_only(world):
    card = world.enroll(email="ada@example.com")
    other = world.enroll("Bob Stone")
    secret = card["card_url"].rsplit("/", 1)[1]
    token = world.client.post("/api/v1/auth/card", json={"card_token": secret}).get_json()
    assert token["role"] == "customer"
    me = world.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.get_json()["id"] == card["customer_id"] != other["customer_id"]
    assert world.client.post("/api/v1/auth/card", json={"card_token": card["barcode"]}).status_code == 404


def test_staff_users_are_created_from_the_command_line_without_prompts(world):
    runner = world.app.test_cli_runner()
    store_id = world.store_ids[1]
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--role",
            "cashier",
            "--store",
            str(store_id),
            "--email",
            "till2@example.com",
            "--password",
            "a-long-password",
        ]
    )
    assert result.exit_code == 0, result.output
    login = world.client.post("/api/v1/auth/token", json={"email": "till2@example.com", "password": "a-long-password"})
    claims = jwt.decode(login.get_json()["access_token"], options={"verify_signature": False})
    assert claims["store_id"] == store_id and claims["role"] == "cashier"
    no_store = runner.invoke(
        args=["users", "create", "--role", "cashier", "--email", "x@example.com", "--password", "a-long-password"]
    )
    assert no_store.exit_code != 0 and "store" in no_store.output


@pytest.mark.parametrize("password", ["short", ""])
def test_weak_passwords_are_refused(world, password):
    response = world.client.post(
        "/api/v1/users",
        json={"email": "m2@example.com", "password": password, "role": "marketer"},
        headers=world.headers(Role.admin),
    )
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "password"


def test_passwords_are_stored_as_scrypt_hashes(world):
    with world.database.transaction() as session:
        stored = session.get(StaffUser, world.staff[Role.admin].id).password_hash
    assert stored.startswith("scrypt$") and world.passwords["admin@example.com"] not in stored
