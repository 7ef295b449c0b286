"""Fixtures of the Apple Wallet tests: the app signs passes with throwaway credentials and
pushes to the local APNs (`apple_certs` and `fake_apns` are in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def settings_overrides(apple_certs, fake_apns, tmp_path):
    return {
        "apple": {"certs_dir": apple_certs, "apns_host": fake_apns.url, "apns_ca_file": fake_apns.ca_file},
        "google": {"certs_dir": tmp_path / "google-certs"},
        "max_purchases_per_card_per_hour": 1000,
    }
