"""The public sign-up page /join, server side: rendering, referral codes, and the plain form post
that enrols when scripts are off. The browser path (join.js -> POST /api/v1/enroll) is in
tests/web/test_card_page_browser.py."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.loyalty.models import Card, Channel, Customer, Program, Referral
from app.loyalty.service import current_consents
from app.web.views import wallet_badges


@pytest.fixture
def referrer(world):
    return world.enroll("Grace Hopper", email="grace@example.com")


def form(**fields) -> dict:
    return {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "phone": "",
        "referral_code": "",
        **fields,
    }


def customer_by_card_url(world, card_url: str) -> Customer:
    token = card_url.rsplit("/", 1)[1]
    with world.database.transaction() as session:
        customer = session.scalar(select(Customer).join(Card).where(Card.access_token == token))
        session.expunge(customer)
        return customer


def test_the_front_door_and_a_shared_link_lead_to_the_sign_up_page(world):
    assert world.client.get("/").headers["Location"] == "/join"
    shared = world.client.get("/?ref=ABCD2345&lang=fr&_external=1&_scheme=javascript")
    assert shared.status_code == 302 and shared.headers["Location"] == "/join?ref=ABCD2345&lang=fr"


def test_the_card_page_shares_a_link_to_the_sign_up_page(world, referrer):
    page = world.client.get(referrer["card_url"].removeprefix("http://card.test")).get_data(as_text=True)
    assert f'href="http://card.test/join?ref={referrer["referral_code"]}"' in page


@pytest.mark.parametrize(
    ("language", "words"),
    [
        (
            "en",
            ["Join Pointcard Coffee", "Create my card", "First name", "I agree to receive offers", "Voice messages"],
        ),
        ("fr", ["Rejoindre Pointcard Coffee", "Créer ma carte", "Prénom", "J’accepte de recevoir", "Messages vocaux"]),
    ],
)
def test_the_page_renders_in_english_and_french(world, language, words):
    response = world.client.get("/join", headers={"Accept-Language": language})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and f'<html lang="{language}">' in page
    assert all(word in page for word in words), [w for w in words if w not in page]
    assert "script-src" not in response.headers["Content-Security-Policy"]  # default-src 'self': no inline
    assert "<script>" not in page and response.headers["Cache-Control"] == "no-store"
    for channel in ("email", "sms", "push", "voice"):
        assert f'name="consent_{channel}"' in page


def test_a_known_code_is_prefilled_and_an_unknown_one_is_named_but_not_kept(world, referrer):
    code = referrer["referral_code"]
    known = world.client.get(f"/join?ref={code.lower()}").get_data(as_text=True)
    assert f'value="{code}"' in known  # upper-cased, as the API matches it
    assert "A friend invited you: after your first purchase you get 50 bonus points" in known
    unknown = world.client.get("/join?ref=NOPE2345", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Le code de parrainage « NOPE2345 » est inconnu" in unknown
    assert 'value=""' in unknown.split('name="referral_code"')[1].split(">")[0]  # not kept: it would only fail
    with world.database.transaction() as session:
        session.get(Program, world.program_id).referee_bonus = 0
    plain = world.client.get(f"/join?ref={code}").get_data(as_text=True)
    assert "A friend invited you." in plain and "0 bonus points" not in plain
    forged = world.client.get("/join?ref=<script>alert(1)</script>").get_data(as_text=True)
    assert "<script>alert" not in forged and "&lt;script&gt;" in forged


def test_without_scripts_the_form_enrols_with_the_referral_and_opens_the_card(world, referrer):
    response = world.client.post(
        "/join?lang=fr",
        data=form(
            referral_code=referrer["referral_code"], consent_sms="on", phone="+33612345678", first_name="Ada Augusta"
        ),
    )
    assert response.status_code == 303 and response.headers["Location"].startswith("http://card.test/card/")
    customer = customer_by_card_url(world, response.headers["Location"])
    assert (customer.first_name, customer.last_name) == ("Ada Augusta", "Lovelace")  # as typed, not re-split
    with world.database.transaction() as session:
        referral = session.scalar(select(Referral).where(Referral.referee_id == customer.id))
        assert referral.referrer_id == referrer["customer_id"] and referral.rewarded_at is None
        consents = current_consents(session=session, customer_id=customer.id)
        assert consents[Channel.sms].granted and not consents[Channel.email].granted
        disclosure = consents[Channel.sms].disclosure
        assert disclosure.startswith("J’accepte de recevoir les offres et actualités de Pointcard Coffee")


def test_bad_input_shows_the_apis_detail_and_keeps_what_was_typed(world):
    response = world.client.post("/join", data=form(email="not-an-email", last_name="Byron"))
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "email:" in page and 'value="Byron"' in page
    unknown = world.client.post("/join", data=form(referral_code="NOPE2345"))
    assert unknown.status_code == 422 and "The referral code is not known." in unknown.get_data(as_text=True)
    nobody = world.client.post("/join", data=form(email=""), headers={"Accept-Language": "fr"})
    assert nobody.status_code == 422 and "Indiquez une adresse e-mail" in nobody.get_data(as_text=True)
    assert world.client.post("/join", data=form()).status_code == 303
    twice = world.client.post("/join", data=form())
    assert twice.status_code == 409
    assert "A customer with this email is already enrolled." in twice.get_data(as_text=True)
    with world.database.transaction() as session:  # only the first went in; the failed ones rolled back
        assert len(session.scalars(select(Customer).where(Customer.first_name == "Ada")).all()) == 1


def test_the_push_button_texts_come_from_the_page_in_its_language(world, referrer):
    path = referrer["card_url"].removeprefix("http://card.test")
    page = world.client.get(path, headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert 'data-push-off="Recevoir les offres"' in page and 'data-push-on="Ne plus recevoir les offres"' in page


class TestRateLimit:
    @pytest.fixture
    def settings_overrides(self):
        return {"rate_limits_enabled": True, "enroll_rate_limit": "1 per minute"}

    def test_the_plain_form_is_rate_limited_per_ip_with_a_page(self, world):
        assert world.client.post("/join", data=form()).status_code == 303
        again = world.client.post("/join", data=form(email="b@example.com"), headers={"Accept-Language": "fr"})
        assert again.status_code == 429 and again.mimetype == "text/html"
        assert "Trop de tentatives" in again.get_data(as_text=True) and "Retry-After" in again.headers
        assert world.client.get("/join").status_code == 200  # reading the page is not limited


def test_official_wallet_artwork_is_picked_by_language_when_present(tmp_path):
    (tmp_path / "google-wallet-fr.svg").write_text("<svg/>")
    assert wallet_badges("fr", tmp_path) == {"apple": None, "google": "badges/google-wallet-fr.svg"}
    assert wallet_badges("en", tmp_path) == {"apple": None, "google": None}


def test_the_enrol_api_keeps_two_names_as_given_and_still_splits_a_single_name(world):
    given = world.client.post("/api/v1/enroll", json={"first_name": "Mary Ann", "last_name": "Smith"})
    split = world.client.post("/api/v1/enroll", json={"name": "Grace Brewster Hopper"})
    neither = world.client.post("/api/v1/enroll", json={"last_name": "Nobody"})
    assert given.status_code == split.status_code == 201 and neither.status_code == 422
    assert "give first_name" in str(neither.get_json())
    with world.database.transaction() as session:
        names = {(c.first_name, c.last_name) for c in session.scalars(select(Customer))}
    assert {("Mary Ann", "Smith"), ("Grace", "Brewster Hopper")} <= names
