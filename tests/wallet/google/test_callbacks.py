"""Google's save/delete callbacks: ECv2SigningOnly signatures made here with real keys, served
by a local key server; replays and expired messages dropped, forgeries refused."""

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from app.wallet.google.callbacks import length_value
from app.wallet.google.models import GoogleWalletCallbackNonce, GoogleWalletClass, GoogleWalletObject

PROBLEM = "application/problem+json"


@pytest.fixture
def settings_overrides(fake_google, tmp_path):
    return {"google": fake_google.settings(tmp_path / "certs")}


@pytest.fixture
def ids(world):
    """A card whose save link was opened: (object id, class id)."""
    card = world.enroll()
    assert world.client.get(card["google_save_url"].removeprefix("http://card.test")).status_code == 302
    with world.database.transaction() as session:
        return (
            session.scalar(select(GoogleWalletObject.object_id)),
            session.scalar(select(GoogleWalletClass.class_id)),
        )


def _post(world, body):
    return world.client.post("/wallet/google/callback", json=body)


def _object(world) -> GoogleWalletObject:
    with world.database.transaction() as session:
        obj = session.scalar(select(GoogleWalletObject))
        session.expunge(obj)
        return obj


def _problem(response, status, slug):
    assert response.status_code == status, response.get_json()
    assert response.mimetype == PROBLEM and response.get_json()["type"].endswith("/" + slug)


def test_the_length_prefix_is_four_little_endian_bytes():
    assert length_value("ab", "") == b"\x02\x00\x00\x00ab\x00\x00\x00\x00"
    assert length_value("é") == b"\x02\x00\x00\x00\xc3\xa9"  # bytes, not characters


def test_a_save_then_a_delete_are_recorded_on_the_card(world, fake_google, ids):
    object_id, class_id = ids
    assert _post(world, fake_google.signed_callback(object_id=object_id, class_id=class_id)).get_json() == {
        "status": "recorded"
    }
    saved = _object(world)
    assert saved.in_wallet and saved.saved_at and saved.inserted_in_google
    body = fake_google.signed_callback(object_id=object_id, class_id=class_id, event_type="del")
    assert _post(world, body).get_json() == {"status": "recorded"}
    deleted = _object(world)
    assert not deleted.in_wallet and deleted.deleted_at >= saved.saved_at


def test_a_replayed_callback_is_dropped(world, fake_google, ids):
    object_id, class_id = ids
    save = fake_google.signed_callback(object_id=object_id, class_id=class_id)
    assert _post(world, save).get_json() == {"status": "recorded"}
    delete = fake_google.signed_callback(object_id=object_id, class_id=class_id, event_type="del")
    assert _post(world, delete).get_json() == {"status": "recorded"}
    assert _post(world, save).get_json() == {"status": "duplicate"}
    assert not _object(world).in_wallet  # the replayed save changed nothing


def test_an_expired_callback_is_dropped(world, fake_google, ids):
    object_id, class_id = ids
    stale = fake_google.signed_callback(object_id=object_id, class_id=class_id, expires_in=-1)
    assert _post(world, stale).get_json() == {"status": "expired"}
    assert not _object(world).in_wallet
    with world.database.transaction() as session:
        assert session.scalar(select(func.count(GoogleWalletCallbackNonce.id))) == 0


def test_nonces_are_kept_only_until_their_messages_expire(world, fake_google, ids):
    object_id, class_id = ids
    _post(world, fake_google.signed_callback(object_id=object_id, class_id=class_id, expires_in=0.001))
    _post(world, fake_google.signed_callback(object_id=object_id, class_id=class_id, expires_in=60))
    with world.database.transaction() as session:
        assert session.scalar(select(func.count(GoogleWalletCallbackNonce.id))) == 1


def test_a_tampered_message_is_refused(world, fake_google, ids):
    object_id, class_id = ids
    body = fake_google.signed_callback(object_id=object_id, class_id=class_id, event_type="del")
    body["signedMessage"] = body["signedMessage"].replace('"del"', '"save"')
    _problem(_post(world, body), 401, "callback-signature-invalid")
    assert not _object(world).in_wallet


def test_a_key_google_did_not_publish_is_refused(world, fake_google, ids):
    object_id, class_id = ids
    stranger = ec.generate_private_key(ec.SECP256R1())
    _problem(
        _post(world, fake_google.signed_callback(object_id=object_id, class_id=class_id, root_key=stranger)),
        401,
        "callback-signature-invalid",
    )


def test_a_message_for_another_issuer_is_refused(world, fake_google, ids):
    object_id, class_id = ids
    body = fake_google.signed_callback(object_id=object_id, class_id=class_id, recipient_id="3388000000099999999")
    _problem(_post(world, body), 401, "callback-signature-invalid")


def test_an_expired_intermediate_key_is_refused(world, fake_google, ids):
    object_id, class_id = ids
    body = fake_google.signed_callback(object_id=object_id, class_id=class_id, intermediate_expires_in=-1)
    _problem(_post(world, body), 401, "callback-signature-invalid")


def test_both_sender_ids_googles_docs_name_are_accepted_and_no_other(world, fake_google, ids):
    object_id, class_id = ids
    newer = fake_google.signed_callback(object_id=object_id, class_id=class_id, sender_id="GoogleWalletPasses")
    assert _post(world, newer).get_json() == {"status": "recorded"}
    other = fake_google.signed_callback(object_id=object_id, class_id=class_id, sender_id="Google")
    _problem(_post(world, other), 401, "callback-signature-invalid")


def test_malformed_callbacks_are_problems(world, fake_google, ids):
    object_id, class_id = ids
    body = fake_google.signed_callback(object_id=object_id, class_id=class_id)
    _problem(_post(world, {**body, "protocolVersion": "ECv1"}), 400, "callback-malformed")
    _problem(_post(world, {key: value for key, value in body.items() if key != "signature"}), 422, "validation-error")
    _problem(_post(world, {**body, "extra": 1}), 422, "validation-error")
    _problem(
        world.client.post("/wallet/google/callback", data="{", content_type="application/json"), 400, "bad-request"
    )


def test_a_signed_message_that_is_no_save_or_delete_is_a_400(world, fake_google, ids):
    object_id, class_id = ids
    body = fake_google.signed_callback(object_id=object_id, class_id=class_id, event_type="update")
    _problem(_post(world, body), 400, "callback-malformed")


def test_an_unknown_object_is_acknowledged_and_ignored(world, fake_google, ids):
    _, class_id = ids
    body = fake_google.signed_callback(object_id="3388000000022001234.card-0000000000", class_id=class_id)
    assert _post(world, body).get_json() == {"status": "unknown-object"}


def test_googles_keys_are_fetched_once_and_again_when_they_rotate(world, fake_google, ids):
    object_id, class_id = ids
    for _ in range(3):
        assert _post(world, fake_google.signed_callback(object_id=object_id, class_id=class_id)).status_code == 200
    assert fake_google.key_fetches == 1
    fake_google.root_keys = [ec.generate_private_key(ec.SECP256R1())]
    # A failed check fetches the keys again, but not twice a minute (forgeries could force it)...
    _problem(
        _post(world, fake_google.signed_callback(object_id=object_id, class_id=class_id)),
        401,
        "callback-signature-invalid",
    )
    assert fake_google.key_fetches == 1
    world.app.extensions[
        "pointcard"
    ].google_wallet.root_keys.min_refresh_seconds = 0  # ...so a minute later the new key is picked up
    assert _post(world, fake_google.signed_callback(object_id=object_id, class_id=class_id)).status_code == 200
    assert fake_google.key_fetches == 2


def test_an_unreachable_key_server_is_a_503_problem(world, fake_google, ids):
    object_id, class_id = ids
    body = fake_google.signed_callback(object_id=object_id, class_id=class_id)
    fake_google.stop()
    _problem(_post(world, body), 503, "callback-keys-unavailable")
