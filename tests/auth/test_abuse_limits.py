"""Abuse limits: per-IP and per-account rate limits (memory and real Redis), login lockout,
security headers. Limits are counted for real: no clock is faked, windows are minutes long."""

from __future__ import annotations

import socket
import uuid

import pytest

from app import create_app
from app.roles import Role
from tests.support import make_settings, require

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(params=["memory", "redis"])
def storage(request):
    """Each test runs once with the in-process store and once with Redis (own key prefix)."""
    if request.param == "memory":
        yield {}
        return
    require(_redis_reachable(), "Redis is not running on 127.0.0.1:6379")
    prefix = f"pointcard-test-{uuid.uuid4().hex}"
    yield {"redis_url": REDIS_URL, "rate_limit_key_prefix": prefix}
    _forget(prefix)


def _forget(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"].endswith("/" + slug) and body["status"] == status
    return body


def login(world, email: str, password: str, **kwargs):
    return world.client.post("/api/v1/auth/token", json={"email": email, "password": password}, **kwargs)


# --- per-account limits on authenticated calls ---------------------------------------------------


class TestPerAccountLimits:
    @pytest.fixture
    def settings_overrides(self, storage):
        return {
            **storage,
            "rate_limits_enabled": True,
            "staff_rate_limit": "3 per minute",
            "customer_rate_limit": "2 per minute",
            "public_rate_limit": "4 per minute",
        }

    def test_staff_are_limited_per_user_not_per_ip(self, world):
        marketer = world.headers(Role.marketer)
        for n in range(3):
            # Each from another address: the account is what counts.
            response = world.client.get(
                "/api/v1/rewards", headers=marketer, environ_base={"REMOTE_ADDR": f"10.0.0.{n}"}
            )
            assert response.status_code == 200
        body = assert_problem(world.client.get("/api/v1/rewards", headers=marketer), 429, "rate-limited")
        assert "3 per 1 minute" in body["detail"]
        refused = world.client.get("/api/v1/rewards", headers=marketer)
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # Another staff user from the very same address is not held back.
        assert world.client.get("/api/v1/rewards", headers=world.headers(Role.admin)).status_code == 200

    def test_a_new_token_for_the_same_user_shares_the_limit(self, world):
        for _ in range(3):
            assert world.client.get("/api/v1/stores", headers=world.headers(Role.cashier)).status_code == 200
        assert world.client.get("/api/v1/stores", headers=world.headers(Role.cashier)).status_code == 429

    def test_customers_are_limited_per_customer(self, world):
        first, second = world.enroll(name="Ada One"), world.enroll(name="Bob Two")
        ada = world.headers(Role.customer, customer_id=first["customer_id"])
        for _ in range(2):
            assert world.client.get("/api/v1/me", headers=ada).status_code == 200
        assert_problem(world.client.get("/api/v1/me", headers=ada), 429, "rate-limited")
        bob = world.headers(Role.customer, customer_id=second["customer_id"])
        assert world.client.get("/api/v1/me", headers=bob).status_code == 200

    def test_anonymous_requests_are_limited_per_ip_across_routes(self, world):
        """Valid tokens do not count against the IP; junk tokens do."""
        ip = {"REMOTE_ADDR": "192.0.2.50"}
        staff = world.headers(Role.admin)
        for _ in range(3):
            assert world.client.get("/api/v1/stores", headers=staff, environ_base=ip).status_code == 200
        answers = [
            world.client.get("/api/v1/push/vapid-public-key", environ_base=ip).status_code,
            world.client.get("/api/v1/openapi.json", environ_base=ip).status_code,
            world.client.get("/api/v1/stores", headers={"Authorization": "Bearer junk"}, environ_base=ip).status_code,
            world.client.get("/till", environ_base=ip).status_code,
        ]
        assert 429 not in answers and len(answers) == 4
        refused = world.client.get("/api/v1/openapi.json", environ_base=ip)
        assert_problem(refused, 429, "too-many-requests")
        assert int(refused.headers["Retry-After"]) >= 1
        assert world.client.get("/api/v1/openapi.json", environ_base={"REMOTE_ADDR": "192.0.2.51"}).status_code == 200
        # Probes are never limited.
        assert world.client.get("/healthz", environ_base=ip).status_code == 200


class TestRedisIsShared:
    """Two app instances (two web nodes) over one Redis count together; over memory they cannot."""

    @pytest.fixture
    def settings_overrides(self):
        require(_redis_reachable(), "Redis is not running on 127.0.0.1:6379")
        prefix = f"pointcard-test-{uuid.uuid4().hex}"
        yield {
            "redis_url": REDIS_URL,
            "rate_limit_key_prefix": prefix,
            "rate_limits_enabled": True,
            "staff_rate_limit": "4 per minute",
        }
        _forget(prefix)

    def test_two_nodes_share_one_count(self, world, db, settings_overrides):
        other_node = create_app(make_settings(db.url, **settings_overrides), database=db.database).test_client()
        headers = world.headers(Role.admin)
        for client in (world.client, other_node, world.client, other_node):
            assert client.get("/api/v1/stores", headers=headers).status_code == 200
        assert other_node.get("/api/v1/stores", headers=headers).status_code == 429
        assert world.client.get("/api/v1/stores", headers=headers).status_code == 429


# --- login lockout -------------------------------------------------------------------------------


class TestLoginLockout:
    @pytest.fixture
    def settings_overrides(self, storage):
        # The per-IP login limit stays off: the lockout alone is under test.
        return {**storage, "login_lockout_attempts": 3, "login_lockout_minutes": 10}

    def test_repeated_failures_lock_the_email_whatever_the_password(self, world):
        email, password = "cashier@example.com", world.passwords["cashier@example.com"]
        for _ in range(3):
            assert_problem(login(world, email, "wrong-password"), 401, "unauthorized")
        locked_right = login(world, email, password)
        locked_wrong = login(world, email, "wrong-password")
        for response in (locked_right, locked_wrong):
            body = assert_problem(response, 429, "login-locked")
            assert "10 minutes" in body["detail"]
            assert 540 <= int(response.headers["Retry-After"]) <= 600
        assert locked_right.get_json() == locked_wrong.get_json()
        # Case and spaces do not make a new e-mail.
        assert login(world, " Cashier@Example.COM", password).status_code == 429
        # Other accounts are unaffected.
        assert login(world, "admin@example.com", world.passwords["admin@example.com"]).status_code == 200

    def test_an_unknown_email_is_locked_the_same_way(self, world):
        known, unknown = [], []
        for _ in range(4):
            known.append(login(world, "marketer@example.com", "wrong-password"))
            unknown.append(login(world, "nobody@example.com", "wrong-password"))
        assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401, 401, 401, 429]
        for k, u in zip(known, unknown, strict=True):
            assert k.get_json()["detail"] == u.get_json()["detail"]

    def test_a_success_resets_the_count(self, world):
        email, password = "admin@example.com", world.passwords["admin@example.com"]
        for _ in range(2):
            assert login(world, email, "wrong-password").status_code == 401
        assert login(world, email, password).status_code == 200
        for _ in range(2):
            assert login(world, email, "wrong-password").status_code == 401
        assert login(world, email, password).status_code == 200


def test_the_lockout_is_on_by_default(world):
    """Defaults: five failures lock the e-mail (the tests' app keeps the per-IP limits off)."""
    for _ in range(5):
        assert login(world, "admin@example.com", "wrong-password").status_code == 401
    assert login(world, "admin@example.com", world.passwords["admin@example.com"]).status_code == 429


class TestLockoutOff:
    @pytest.fixture
    def settings_overrides(self):
        return {"login_lockout_attempts": 0}

    def test_zero_attempts_turns_the_lockout_off(self, world):
        for _ in range(8):
            assert login(world, "admin@example.com", "wrong-password").status_code == 401
        assert login(world, "admin@example.com", world.passwords["admin@example.com"]).status_code == 200


# --- security headers ----------------------------------------------------------------------------


def test_api_and_pages_carry_security_headers_and_hsts_only_over_https(world):
    for path in ("/till", "/api/v1/openapi.json", "/api/v1/stores"):
        plain = world.client.get(path)
        assert plain.headers["X-Content-Type-Options"] == "nosniff"
        assert plain.headers["Referrer-Policy"] == "no-referrer"
        assert "Strict-Transport-Security" not in plain.headers
        secure = world.client.get(path, base_url="https://card.test")
        assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    page = world.client.get("/till")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


class TestHttpsBehindAProxy:
    @pytest.fixture
    def settings_overrides(self):
        return {"proxy_hops": 1}

    def test_hsts_follows_the_proxys_scheme(self, world):
        https = world.client.get("/till", headers={"X-Forwarded-Proto": "https"})
        assert https.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert (
            "Strict-Transport-Security" not in world.client.get("/till", headers={"X-Forwarded-Proto": "http"}).headers
        )


def test_the_rate_limit_answers_are_in_the_openapi_document(world):
    document = world.client.get("/api/v1/openapi.json").get_json()
    assert "429" in document["paths"]["/api/v1/auth/token"]["post"]["responses"]
