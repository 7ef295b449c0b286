"""The "Add to Google Wallet" link: a JWT Google can verify, under 1,800 characters."""

import base64
import json

import jwt
import pytest
from sqlalchemy import select

from app.loyalty.models import Card
from app.roles import Role
from app.wallet.google import service
from app.wallet.google.models import GoogleWalletClass, GoogleWalletObject
from tests.fakes.google import CLIENT_EMAIL
from tests.fakes.walletobjects import schema_errors


@pytest.fixture
def settings_overrides(fake_google, tmp_path):
    return {"google": fake_google.settings(tmp_path / "certs")}


def _save_link(world, card) -> str:
    response = world.client.get(card["google_save_url"].removeprefix("http://card.test"))
    assert response.status_code == 302, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    base = world.app.extensions["pointcard"].settings.google.save_url_base
    assert response.headers["Location"].startswith(base)
    return response.headers["Location"].removeprefix(base)


def _verify(token, fake):
    return jwt.decode(token, fake.account.public_key, algorithms=["RS256"], audience="google", issuer=CLIENT_EMAIL)


def _rows(world, customer_id):
    with world.database.transaction() as session:
        card = session.scalar(select(Card).where(Card.customer_id == customer_id))
        obj = session.scalar(select(GoogleWalletObject).where(GoogleWalletObject.card_id == card.id))
        cls = session.scalar(select(GoogleWalletClass))
        session.expunge_all()
        return card, obj, cls


def _rest_object(world, customer_id) -> dict:
    """What the REST client would insert for the card now."""
    with world.database.transaction() as session:
        card = session.scalar(select(Card).where(Card.customer_id == customer_id))
        return service.object_payload(
            session=session, card=card, wallet=world.app.extensions["pointcard"].google_wallet
        )


def test_the_link_verifies_with_the_service_accounts_key_and_carries_the_rest_object(world, fake_google):
    card = world.enroll()
    token = _save_link(world, card)
    assert len(token) < 1800
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": fake_google.account.key_id, "typ": "JWT"}
    claims = _verify(token, fake_google)
    assert claims["typ"] == "savetowallet" and claims["origins"] == ["http://card.test"]
    assert isinstance(claims["iat"], int)
    assert claims["payload"]["loyaltyObjects"] == [_rest_object(world, card["customer_id"])]
    assert schema_errors(claims["payload"]["loyaltyObjects"][0], "LoyaltyObject") == []


def test_a_tampered_link_does_not_verify(world, fake_google):
    token = _save_link(world, world.enroll())
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["payload"]["loyaltyObjects"][0]["loyaltyPoints"]["balance"]["int"] = 1_000_000
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(jwt.InvalidSignatureError):
        _verify(f"{header}.{forged}.{signature}", fake_google)
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    with pytest.raises(jwt.InvalidSignatureError):
        _verify(f"{header}.{payload}.{flipped}", fake_google)


def test_the_first_link_puts_the_class_in_through_rest_when_both_would_not_fit(world, fake_google):
    card = world.enroll()
    claims = _verify(_save_link(world, card), fake_google)
    assert "loyaltyClasses" not in claims["payload"]
    [insert] = fake_google.api_calls("POST", "loyaltyClass")
    assert insert.status == 200 and insert.body["reviewStatus"] == "UNDER_REVIEW"
    _, obj, cls = _rows(world, card["customer_id"])
    assert cls.inserted_in_google and cls.review_status == "APPROVED"
    assert not obj.inserted_in_google  # the customer has not saved it yet


class TestRoomyLinks:
    @pytest.fixture
    def settings_overrides(self, fake_google, tmp_path):
        return {"google": fake_google.settings(tmp_path / "certs", max_jwt_chars=20_000)}

    def test_the_class_rides_in_the_link_on_first_save_when_it_fits(self, world, fake_google):
        card = world.enroll()
        payload = _verify(_save_link(world, card), fake_google)["payload"]
        [cls] = payload["loyaltyClasses"]
        assert cls["reviewStatus"] == "UNDER_REVIEW" and schema_errors(cls, "LoyaltyClass") == []
        assert payload["loyaltyObjects"][0]["classId"] == cls["id"]
        assert fake_google.api_calls() == []  # nothing waited on Google


class TestTightLinks:
    @pytest.fixture
    def settings_overrides(self, fake_google, tmp_path):
        return {"google": fake_google.settings(tmp_path / "certs", max_jwt_chars=900)}

    def test_an_object_too_big_for_the_link_goes_in_first_and_the_link_names_it(self, world, fake_google):
        card = world.enroll()
        token = _save_link(world, card)
        _, obj, cls = _rows(world, card["customer_id"])
        assert _verify(token, fake_google)["payload"] == {
            "loyaltyObjects": [{"id": obj.object_id, "classId": cls.class_id}]
        }
        assert len(token) <= 900 and obj.inserted_in_google
        assert fake_google.objects[obj.object_id] == _rest_object(world, card["customer_id"])


def test_once_the_object_is_in_google_the_link_is_skinny(world, fake_google):
    card = world.enroll()
    first = _verify(_save_link(world, card), fake_google)
    _, obj, cls = _rows(world, card["customer_id"])
    callback = fake_google.signed_callback(object_id=obj.object_id, class_id=cls.class_id)
    assert world.client.post("/wallet/google/callback", json=callback).get_json() == {"status": "recorded"}
    again = _verify(_save_link(world, card), fake_google)
    assert again["payload"] == {"loyaltyObjects": [{"id": obj.object_id, "classId": cls.class_id}]}
    assert len(first["payload"]["loyaltyObjects"][0]) > 2


def test_an_unknown_card_is_a_404_problem(world):
    response = world.client.get("/wallet/google/not-a-card-token")
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert response.get_json()["type"].endswith("/card-not-found")


def test_google_down_when_the_class_must_go_in_is_a_503_problem_and_the_next_click_works(world, fake_google):
    card = world.enroll()
    fake_google.fail_next("POST", "/walletobjects/v1/loyaltyClass", 503)
    response = world.client.get(card["google_save_url"].removeprefix("http://card.test"))
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    assert response.get_json()["type"].endswith("/google-wallet-unavailable")
    assert not _rows(world, card["customer_id"])[2].inserted_in_google
    assert _verify(_save_link(world, card), fake_google)
    assert _rows(world, card["customer_id"])[2].inserted_in_google


def test_the_till_earns_while_a_save_link_waits_on_google(world, fake_google):
    """No transaction is open during the REST call: on SQLite one would hold every writer."""
    first, other = world.enroll(email="first@example.com"), world.enroll(email="other@example.com")
    earned = []

    def till_sale():
        if not earned:  # Google is busy putting the class in: a sale at the till meanwhile
            earned.append(
                world.app.test_client()
                .post(
                    "/api/v1/pos/purchases",
                    json={"barcode": other["barcode"], "amount": "4.00", "currency": "USD"},
                    headers=world.headers(Role.cashier, "sale-during-save-link"),
                )
                .status_code
            )

    fake_google.while_called = till_sale
    _save_link(world, first)
    assert earned == [201] and world.balance(other["customer_id"]) == 90


class TestNotConfigured:
    @pytest.fixture
    def settings_overrides(self, tmp_path):
        return {"google": {"certs_dir": tmp_path / "nothing-here"}}

    def test_without_credentials_the_link_is_a_503_problem_and_the_log_says_why(self, world, caplog):
        card = world.enroll()
        response = world.client.get(card["google_save_url"].removeprefix("http://card.test"))
        assert response.status_code == 503 and response.mimetype == "application/problem+json"
        assert "nothing-here" not in response.get_json()["detail"]  # no server paths in public answers
        assert "flask wallet dev-certs" in caplog.text
