"""The production cost of password hashing is unchanged by the cheap one the tests run with
(tests/support.py's make_settings asks for 10): Settings defaults to 15 and production refuses less."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.auth.passwords import hash_password, verify_password
from app.config import Settings


def test_the_default_cost_is_scrypt_n_2_15_and_production_refuses_a_cheaper_one(monkeypatch):
    monkeypatch.delenv("POINTCARD_PASSWORD_HASH_COST", raising=False)
    cost = Settings().password_hash_cost
    assert cost == 15
    stored = hash_password("correct horse battery staple", cost=cost)
    scheme, n, r, p, _salt, _digest = stored.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**15, 8, 1)  # the hash records its own N
    assert verify_password("correct horse battery staple", stored)
    assert not verify_password("correct horse battery stapler", stored)
    with pytest.raises(ValidationError, match="POINTCARD_PASSWORD_HASH_COST below 15 is for tests"):
        Settings(env="production", password_hash_cost=10, secret_key="production-secret-" + "0123456789abcdef" * 2)
    production = Settings(env="production", secret_key="production-secret-" + "0123456789abcdef" * 2)
    assert production.password_hash_cost == 15
