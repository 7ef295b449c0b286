"""The REST client against the local fake of Google: OAuth2 from the service account, the
walletobjects v1 calls, and how each answer maps onto the outbox's retry rules."""

import pytest

from app.messaging.providers import RetryLater, Undeliverable
from app.wallet.google.credentials import ServiceAccount
from app.wallet.google.providers import (
    AlreadyInGoogle,
    GoogleRefused,
    GoogleUnavailable,
    NotInGoogle,
    RestWalletApi,
    upsert_class,
    upsert_object,
)
from tests.fakes.google import ISSUER_ID

CLASS = {
    "id": f"{ISSUER_ID}.client-test",
    "issuerName": "Pointcard",
    "programName": "Pointcard Coffee",
    "programLogo": {"sourceUri": {"uri": "https://card.example/logo.png"}},
    "reviewStatus": "UNDER_REVIEW",
}
OBJECT = {
    "id": f"{ISSUER_ID}.card-1",
    "classId": CLASS["id"],
    "state": "ACTIVE",
    "loyaltyPoints": {"label": "Points", "balance": {"int": 5}},
}


@pytest.fixture
def api(fake_google):
    account = ServiceAccount(fake_google.account.info(fake_google.token_url))
    return RestWalletApi(base_url=f"{fake_google.url}/walletobjects/v1", account=account, timeout=5)


def test_insert_get_and_patch_a_class_and_an_object(api, fake_google):
    assert api.insert_class(CLASS)["reviewStatus"] == "APPROVED"  # Google approves loyalty classes itself
    assert api.get_class(CLASS["id"])["programName"] == "Pointcard Coffee"
    assert api.patch_class(CLASS["id"], {**CLASS, "programName": "Pointcard"})["programName"] == "Pointcard"
    api.insert_object(OBJECT)
    patched = api.patch_object(OBJECT["id"], {**OBJECT, "loyaltyPoints": {"label": "Points", "balance": {"int": 9}}})
    assert patched["loyaltyPoints"]["balance"] == {"int": 9}
    assert api.get_object(OBJECT["id"])["loyaltyPoints"]["balance"] == {"int": 9}
    message = {"id": "m1", "header": "Hi", "body": "There", "messageType": "TEXT"}
    assert api.add_message(OBJECT["id"], message)["resource"]["messages"] == [message]
    assert fake_google.token_requests == 1  # one grant, reused for every call


def test_conflicts_and_missing_resources_are_told_apart_and_upserts_resolve_them(api, fake_google):
    api.insert_class(CLASS)
    with pytest.raises(AlreadyInGoogle):
        api.insert_class(CLASS)
    with pytest.raises(NotInGoogle):
        api.patch_object(OBJECT["id"], OBJECT)
    upsert_object(api, OBJECT, exists=True)  # patch 404: inserted
    upsert_object(api, OBJECT, exists=False)  # insert 409: patched
    upsert_class(api, CLASS, exists=False)
    assert [(c.method, c.status) for c in fake_google.api_calls()] == [
        ("POST", 200),
        ("POST", 409),
        ("PATCH", 404),
        ("PATCH", 404),
        ("POST", 200),
        ("POST", 409),
        ("PATCH", 200),
        ("POST", 409),
        ("PATCH", 200),
    ]


def test_busy_google_is_retried_later_honouring_retry_after(api, fake_google):
    fake_google.fail_next("POST", "/walletobjects/v1/loyaltyClass", 429, **{"Retry-After": "7"})
    with pytest.raises(GoogleUnavailable) as busy:
        api.insert_class(CLASS)
    assert isinstance(busy.value, RetryLater) and busy.value.retry_after == 7
    fake_google.fail_next("POST", "/walletobjects/v1/loyaltyClass", 503)
    with pytest.raises(GoogleUnavailable) as failing:
        api.insert_class(CLASS)
    assert failing.value.retry_after is None
    assert api.insert_class(CLASS)["id"] == CLASS["id"]


def test_a_refusal_is_final_and_says_why(api):
    with pytest.raises(GoogleRefused) as refused:
        api.insert_class({**CLASS, "reviewStatus": "LIVE"})
    assert isinstance(refused.value, Undeliverable) and "400" in str(refused.value)
    assert "reviewStatus" in str(refused.value)


def test_an_unreachable_google_or_token_endpoint_is_retried_later(fake_google, service_account_key):
    nowhere = RestWalletApi(
        base_url="http://127.0.0.1:9/walletobjects/v1",
        account=ServiceAccount(service_account_key.info(fake_google.token_url)),
        timeout=2,
    )
    with pytest.raises(GoogleUnavailable):
        nowhere.get_class(CLASS["id"])
    no_tokens = RestWalletApi(
        base_url=f"{fake_google.url}/walletobjects/v1",
        account=ServiceAccount(service_account_key.info("http://127.0.0.1:9/token")),
        timeout=2,
    )
    with pytest.raises(GoogleUnavailable):
        no_tokens.get_class(CLASS["id"])


def test_a_token_the_fake_did_not_issue_is_refused(fake_google):
    import requests

    response = requests.get(
        f"{fake_google.url}/walletobjects/v1/loyaltyClass/x", headers={"Authorization": "Bearer made-up"}, timeout=5
    )
    assert response.status_code == 401


def test_no_call_starts_once_the_sends_lease_is_all_but_over(api, fake_google):
    from datetime import timedelta

    from app.db import utcnow
    from app.wallet.google.providers import deadline

    with deadline(utcnow() + timedelta(seconds=0.5)), pytest.raises(GoogleUnavailable, match="lease"):
        api.insert_class(CLASS)
    with deadline(utcnow() + timedelta(minutes=2)):
        api.insert_class(CLASS)
    assert [(c.method, c.status) for c in fake_google.api_calls()] == [("POST", 200)]
