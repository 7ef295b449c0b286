"""End to end over real HTTP: the app on 127.0.0.1 and a local fake of Google (token endpoint,
REST API, save page, signed callbacks). Enrol, save the card, earn at the till, get a
campaign message; Google is busy once and the update is retried, not dropped."""

from datetime import timedelta

import jwt
import pytest
import requests
from sqlalchemy import select, update

from app.db import utcnow
from app.loyalty.models import Card
from app.messaging.models import Message, MessageState
from app.wallet.google import service
from app.wallet.google.models import GoogleWalletObject
from app.wallet.messages import send_wallet_message
from tests.support import ANY_HOUR, PUSH_OPT_IN, drain


@pytest.fixture
def settings_overrides(fake_google, tmp_path):
    return {"google": fake_google.settings(tmp_path / "certs"), "messaging": ANY_HOUR}


@pytest.fixture
def served(app, live_server):
    # Google calls back the address the class names, so the app must know where it is served.
    app.extensions["pointcard"].settings.public_base_url = live_server
    return live_server


def _object_row(world) -> GoogleWalletObject:
    with world.database.transaction() as session:
        obj = session.scalar(select(GoogleWalletObject))
        session.expunge(obj)
        return obj


def _balance_in_google(fake, object_id) -> int:
    return fake.objects[object_id]["loyaltyPoints"]["balance"]["int"]


def test_enrol_save_earn_message_and_a_busy_google(world, fake_google, served):
    card = world.enroll(email="ada@example.com", **PUSH_OPT_IN)
    assert card["google_save_url"].startswith(served)

    # The customer taps "Add to Google Wallet": our link sends them to Google's save page.
    link = requests.get(card["google_save_url"], allow_redirects=False, timeout=10)
    assert link.status_code == 302 and link.headers["Location"].startswith(fake_google.url + "/gp/v/save/")
    token = link.headers["Location"].rsplit("/", 1)[1]
    assert len(token) < 1800
    claims = jwt.decode(token, fake_google.account.public_key, algorithms=["RS256"], audience="google")
    with world.database.transaction() as session:
        rest_object = service.object_payload(
            session=session, card=session.scalar(select(Card)), wallet=world.app.extensions["pointcard"].google_wallet
        )
    assert claims["payload"]["loyaltyObjects"] == [rest_object]

    # Google saves it and calls us back, signed.
    assert requests.get(link.headers["Location"], timeout=10).status_code == 200
    assert fake_google.callback_results == [(200, {"status": "recorded"})]
    obj = _object_row(world)
    assert obj.in_wallet and obj.inserted_in_google
    assert fake_google.objects[obj.object_id] == rest_object
    assert fake_google.classes[rest_object["classId"]]["callbackOptions"]["url"] == f"{served}/wallet/google/callback"

    # Earning at the till patches the object with the new balance, after the till's commit.
    assert world.purchase(card["barcode"], "12.00").get_json()["balance"] == 170
    assert _balance_in_google(fake_google, obj.object_id) == 50  # the till did not wait on Google
    drain(world.app)
    patch = fake_google.api_calls("PATCH", f"loyaltyObject/{obj.object_id}")[-1]
    assert patch.status == 200 and patch.body["loyaltyPoints"]["balance"] == {"int": 170}
    assert _balance_in_google(fake_google, obj.object_id) == 170

    # A campaign message arrives as addMessage.
    with world.database.transaction() as session:
        assert send_wallet_message(
            session=session,
            card=session.scalar(select(Card)),
            header="Double points",
            body="This weekend, every coffee counts twice.",
        )
    drain(world.app)
    [add] = fake_google.api_calls("POST", f"loyaltyObject/{obj.object_id}/addMessage")
    assert add.status == 200 and add.body["message"]["messageType"] == "TEXT_AND_NOTIFY"
    assert fake_google.objects[obj.object_id]["messages"][0]["header"] == "Double points"

    # Google answers 429 once: the patch waits for Retry-After, then goes through, once.
    fake_google.fail_next("PATCH", "/walletobjects/v1/loyaltyObject", 429, **{"Retry-After": "30"})
    assert world.purchase(card["barcode"], "3.00").get_json()["balance"] == 200
    drain(world.app)
    with world.database.transaction() as session:
        waiting = session.scalars(
            select(Message).where(Message.channel == "google_wallet").order_by(Message.id.desc())
        ).first()
        assert waiting.state is MessageState.queued and waiting.attempts == 1 and "429" in waiting.error
        assert waiting.not_before >= utcnow() + timedelta(seconds=25)
        session.execute(update(Message).where(Message.id == waiting.id).values(not_before=utcnow()))  # 30 s on
    drain(world.app)
    patches = [c.status for c in fake_google.api_calls("PATCH", f"loyaltyObject/{obj.object_id}")]
    assert patches == [200, 429, 200]
    assert _balance_in_google(fake_google, obj.object_id) == 200
    with world.database.transaction() as session:
        assert session.get(Message, waiting.id).state is MessageState.sent

    # Every call to the API carried the token the service account's grant obtained.
    assert fake_google.token_requests == 1
    assert {call.token for call in fake_google.api_calls()} == set(fake_google.tokens)
