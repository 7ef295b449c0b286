"""`flask wallet dev-certs` for Google: throwaway credentials that make working, locally
verifiable save links, with REST calls only logged."""

import json
import logging

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import select

from app.loyalty.models import Card
from app.wallet.google.dev import create_dev_credentials
from app.wallet.google.providers import ConsoleWalletApi
from app.wallet.messages import send_wallet_message
from tests.support import ANY_HOUR, PUSH_OPT_IN, drain


@pytest.fixture
def settings_overrides(tmp_path):
    return {
        "google": {"certs_dir": tmp_path / "google"},
        "apple": {"certs_dir": tmp_path / "apple"},
        "messaging": ANY_HOUR,
    }


def test_dev_certs_writes_a_key_and_issuer_once_and_force_replaces_them(app, tmp_path):
    settings = app.extensions["pointcard"].settings
    first = create_dev_credentials(settings)
    account = json.loads((tmp_path / "google" / "service-account.json").read_text())
    issuer = (tmp_path / "google" / "issuer_id").read_text().strip()
    assert "throwaway" in first and issuer in first
    assert len(issuer) == 19 and issuer.startswith("3388000000")
    assert (tmp_path / "google" / "service-account.json").stat().st_mode & 0o777 == 0o600
    assert "kept" in create_dev_credentials(settings)
    assert json.loads((tmp_path / "google" / "service-account.json").read_text()) == account
    create_dev_credentials(settings, force=True)
    assert (
        json.loads((tmp_path / "google" / "service-account.json").read_text())["private_key"] != account["private_key"]
    )


def test_dev_certs_never_replaces_a_real_service_account(app, tmp_path):
    real = tmp_path / "google" / "service-account.json"
    real.parent.mkdir(parents=True)
    real.write_text(json.dumps({"type": "service_account", "client_email": "real@example.iam.gserviceaccount.com"}))
    assert "real service account" in create_dev_credentials(app.extensions["pointcard"].settings, force=True)
    assert "real@example" in real.read_text()


def test_the_cli_prints_what_it_did(app):
    result = app.test_cli_runner().invoke(args=["wallet", "dev-certs"])
    assert result.exit_code == 0, result.output
    assert "google: wrote a throwaway service account" in result.output


def test_with_dev_credentials_links_verify_locally_and_updates_are_logged(world, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pointcard.google_wallet")
    create_dev_credentials(world.app.extensions["pointcard"].settings)
    assert isinstance(world.app.extensions["pointcard"].google_wallet.api, ConsoleWalletApi)
    card = world.enroll(**PUSH_OPT_IN)
    response = world.client.get(card["google_save_url"].removeprefix("http://card.test"))
    assert response.status_code == 302
    token = response.headers["Location"].removeprefix("https://pay.google.com/gp/v/save/")
    public_key = load_pem_public_key((tmp_path / "google" / "service-account.pub.pem").read_bytes())
    claims = jwt.decode(token, public_key, algorithms=["RS256"], audience="google")
    assert claims["payload"]["loyaltyObjects"][0]["accountId"] == card["member_number"]
    world.purchase(card["barcode"], "5.00")
    with world.database.transaction() as session:
        send_wallet_message(session=session, card=session.scalar(select(Card)), header="Hi", body="There")
    drain(world.app)
    assert "[google wallet console] insert object" in caplog.text
    assert "[google wallet console] add message to" in caplog.text
