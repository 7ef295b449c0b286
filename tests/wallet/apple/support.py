"""What the Apple Wallet tests share (and the privacy tests, which void passes): a pass issued
and downloaded as a device would, its pass.json, and the PassKit web service's URLs."""

from __future__ import annotations

import io
import json
import zipfile
from urllib.parse import urlsplit

from sqlalchemy import select

from app.messaging.models import Message
from app.wallet.apple.config import AppleWalletSettings

PASS_TYPE_ID = AppleWalletSettings().pass_type_id
TEAM_ID = AppleWalletSettings().team_id
DEVICE, PUSH_TOKEN = "device-library-1", "ab" * 32
OTHER_DEVICE, OTHER_PUSH_TOKEN = "device-library-2", "cd" * 32


def url_path(url: str) -> str:
    return urlsplit(url).path


def unpack(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def pass_json(data: bytes) -> dict:
    return json.loads(unpack(data)["pass.json"])


def issued(world, **enroll_fields) -> tuple[dict, str, dict[str, str]]:
    """Enrol, download the pass: (enrolment answer, serial number, the device's auth header)."""
    card = world.enroll(**enroll_fields)
    response = world.client.get(url_path(card["apple_pass_url"]))
    assert response.status_code == 200, response.get_json()
    document = pass_json(response.data)
    return card, document["serialNumber"], {"Authorization": f"ApplePass {document['authenticationToken']}"}


def registration_url(serial: str, device: str = DEVICE) -> str:
    return f"/passkit/v1/devices/{device}/registrations/{PASS_TYPE_ID}/{serial}"


def serials_url(device: str = DEVICE) -> str:
    return f"/passkit/v1/devices/{device}/registrations/{PASS_TYPE_ID}"


def register(world, serial, auth, device=DEVICE, push_token=PUSH_TOKEN) -> int:
    return world.client.post(registration_url(serial, device), json={"pushToken": push_token}, headers=auth).status_code


def messages(world) -> list[Message]:
    with world.database.transaction() as session:
        rows = session.scalars(select(Message).where(Message.channel == "apple_wallet").order_by(Message.id)).all()
        session.expunge_all()
        return list(rows)
