"""Apple Wallet: passes built from the demo design and checked as Wallet would (zip, SHA-1s,
openssl CMS verification), design errors, delivery, and the PassKit web service driven in the
device's order against a real local HTTP/2 APNs (tests/fakes/apns.py)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import zipfile
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import jsonschema
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select, text

from app import create_app
from app.db import utcnow
from app.loyalty.models import CardStatus, Program, Store
from app.loyalty.transactions import adjust_points
from app.messaging.models import Message, MessageState
from app.messaging.outbox import drain_once
from app.roles import Role
from app.wallet.apple.designs import SAMPLE_CONTEXTS, DesignError, design_for, load_design
from app.wallet.apple.dev import DEV_APNS_KEY_ID, create_dev_credentials
from app.wallet.apple.models import AppleDeviceRegistration
from app.wallet.apple.providers import ConsolePusher, ProviderToken, make_pusher
from app.wallet.apple.schema import PASS_SCHEMA
from app.wallet.locations import distance_m, nearest_stores
from tests.fakes.apns import FakeApns
from tests.fakes.tls import make_tls_files
from tests.support import ROOT, make_settings, require
from tests.wallet.apple.support import (
    DEVICE,
    OTHER_DEVICE,
    OTHER_PUSH_TOKEN,
    PASS_TYPE_ID,
    PUSH_TOKEN,
    TEAM_ID,
    issued,
    messages,
    pass_json,
    register,
    registration_url,
    serials_url,
    unpack,
    url_path,
)

DEMO_DESIGN = ROOT / "wallet_templates" / "demo" / "apple"


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def senders(app):
    """The worker's sender for pass pushes, from the factory the channel registry calls: the
    real HTTP/2 APNs client, pointed at the fake server. (Only this channel: the others'
    senders are not what these tests are about.)"""
    pusher = make_pusher(app.extensions["pointcard"])
    yield {"apple_wallet": pusher}
    pusher.close()


@pytest.fixture(scope="session")
def openssl() -> str:
    path = shutil.which("openssl")
    require(path is not None, "openssl is not installed")
    return path


# --- helpers -----------------------------------------------------------------------------------


def repack(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def field(document: dict, key: str) -> dict:
    for group in document["storeCard"].values():
        for entry in group:
            if entry["key"] == key:
                return entry
    raise KeyError(key)


def verify_like_apple(data: bytes, *, certs: Path, workdir: Path, openssl: str) -> list[str]:
    """What Wallet checks before it shows a pass; no problems means it would accept it."""
    files = unpack(data)
    manifest = json.loads(files["manifest.json"])
    problems = []
    present = set(files) - {"manifest.json", "signature"}
    if present != set(manifest):
        problems.append(f"files {sorted(present ^ set(manifest))} are in only one of zip and manifest")
    for name in sorted(present & set(manifest)):
        if hashlib.sha1(files[name]).hexdigest() != manifest[name]:
            problems.append(f"{name}: SHA-1 differs from the manifest")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "manifest.json").write_bytes(files["manifest.json"])
    (workdir / "signature").write_bytes(files["signature"])
    result = subprocess.run(
        [
            openssl,
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(workdir / "signature"),
            "-content",
            str(workdir / "manifest.json"),
            "-CAfile",
            str(certs / "dev_root_ca.pem"),
            "-purpose",
            "any",
            "-out",
            os.devnull,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        problems.append(f"signature: {result.stderr.strip()}")
    return problems


def _problem(response, status: int, slug: str | None = None) -> dict:
    assert response.status_code == status, response.data
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    if slug:
        assert body["type"].endswith("/" + slug)
    return body


# --- building and verifying passes -------------------------------------------------------------


def test_a_pass_from_the_demo_design_verifies_as_apple_would(world, apple_certs, openssl, tmp_path):
    card = world.enroll(name="Ada Lovelace", email="ada@example.com")
    world.purchase(card["barcode"], "20.00")
    response = world.client.get(url_path(card["apple_pass_url"]))

    assert response.status_code == 200 and response.mimetype == "application/vnd.apple.pkpass"
    assert response.headers["Last-Modified"] and "no-cache" in response.headers["Cache-Control"]
    assert verify_like_apple(response.data, certs=apple_certs, workdir=tmp_path / "ok", openssl=openssl) == []
    files = unpack(response.data)
    assert set(json.loads(files["manifest.json"])) == {
        "pass.json",
        "en.lproj/pass.strings",
        "fr.lproj/pass.strings",
        *(f"{image}{scale}.png" for image in ("icon", "logo", "strip") for scale in ("", "@2x", "@3x")),
    }
    assert b"\n" in files["manifest.json"]  # so only a Binary-mode signature verifies
    assert not files["pass.json"].startswith(b"\xef\xbb\xbf")
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        kinds = {info.filename: info.compress_type for info in archive.infolist()}
    assert kinds["icon@3x.png"] == zipfile.ZIP_STORED and kinds["pass.json"] == zipfile.ZIP_DEFLATED
    assert files["strip@3x.png"] == (DEMO_DESIGN / "strip@3x.png").read_bytes()


def test_the_pass_says_who_what_and_where(world):
    card = world.enroll(name="Ada Lovelace", email="ada@example.com")
    world.purchase(card["barcode"], "20.00")  # at the cashier's store, the Pearl District
    document = pass_json(world.client.get(url_path(card["apple_pass_url"])).data)

    jsonschema.validate(document, PASS_SCHEMA)
    assert document["passTypeIdentifier"] == PASS_TYPE_ID and document["teamIdentifier"] == TEAM_ID
    assert document["organizationName"] == "Pointcard Coffee" and document["description"]
    assert document["webServiceURL"] == "http://card.test/passkit"
    assert len(document["authenticationToken"]) >= 16 and len(document["serialNumber"]) >= 16
    assert document["barcodes"] == [
        {
            "format": "PKBarcodeFormatQR",
            "message": card["barcode"],
            "messageEncoding": "iso-8859-1",
            "altText": card["member_number"],
        }
    ]
    assert field(document, "member")["value"] == "Ada Lovelace"
    assert field(document, "balance")["value"] == 250
    assert field(document, "balance")["changeMessage"] == "You now have %@ points"
    assert field(document, "tier")["value"] == "Bronze" and "%@" in field(document, "tier")["changeMessage"]
    assert field(document, "next_reward")["value"] == "Free drip coffee"
    assert field(document, "points_to_go")["value"] == 50
    assert [loc["relevantText"] for loc in document["locations"]] == [
        "Pointcard Coffee, Pearl District is nearby",
        "Pointcard Coffee, Alberta is nearby",
        "Pointcard Coffee, Hawthorne is nearby",
    ]
    assert "voided" not in document and "expirationDate" not in document


def test_any_altered_file_or_manifest_fails_verification(world, apple_certs, openssl, tmp_path):
    card = world.enroll()
    files = unpack(world.client.get(url_path(card["apple_pass_url"])).data)
    for index, name in enumerate(["pass.json", "icon.png", "fr.lproj/pass.strings"]):
        altered = {**files, name: files[name] + b" "}
        problems = verify_like_apple(repack(altered), certs=apple_certs, workdir=tmp_path / str(index), openssl=openssl)
        assert problems == [f"{name}: SHA-1 differs from the manifest"]
        # Updating the manifest to match only moves the failure to the signature.
        manifest = json.loads(files["manifest.json"])
        manifest[name] = hashlib.sha1(altered[name]).hexdigest()
        forged = {**altered, "manifest.json": json.dumps(manifest, indent=2).encode()}
        problems = verify_like_apple(repack(forged), certs=apple_certs, workdir=tmp_path / f"m{index}", openssl=openssl)
        assert len(problems) == 1 and problems[0].startswith("signature:")
    extra = repack({**files, "thumbnail.png": files["icon.png"]})
    assert (
        "only one of zip and manifest"
        in verify_like_apple(extra, certs=apple_certs, workdir=tmp_path / "x", openssl=openssl)[0]
    )


def test_the_signature_is_sha256_with_a_signing_time_and_carries_the_intermediate(
    world, apple_certs, openssl, tmp_path
):
    card = world.enroll()
    (tmp_path / "signature").write_bytes(unpack(world.client.get(url_path(card["apple_pass_url"])).data)["signature"])
    printed = subprocess.run(
        [openssl, "cms", "-cmsout", "-print", "-inform", "DER", "-in", str(tmp_path / "signature")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "signingTime" in printed and "messageDigest" in printed
    assert "sha256" in printed and "sha1" not in printed.lower().replace("sha1withrsa", "")
    assert "eContent: <ABSENT>" in printed  # detached
    assert "Pointcard Development WWDR Certification Authority" in printed.split("signerInfos")[0]


def test_the_barcode_follows_the_program_format(world):
    card = world.enroll()
    for stored, apple in (
        ("PDF417", "PKBarcodeFormatPDF417"),
        ("AZTEC", "PKBarcodeFormatAztec"),
        ("CODE128", "PKBarcodeFormatCode128"),
    ):
        changed = world.client.patch(
            "/api/v1/program", json={"barcode_format": stored}, headers=world.headers(Role.admin)
        )
        assert changed.status_code == 200
        [barcode] = pass_json(world.client.get(url_path(card["apple_pass_url"])).data)["barcodes"]
        assert barcode["format"] == apple and barcode["message"] == card["barcode"]


def test_delivery_answers_304_when_unchanged_and_404_for_an_unknown_card(world):
    card = world.enroll()
    first = world.client.get(url_path(card["apple_pass_url"]))
    again = world.client.get(
        url_path(card["apple_pass_url"]), headers={"If-Modified-Since": first.headers["Last-Modified"]}
    )
    assert again.status_code == 304 and again.data == b""
    assert again.headers["Last-Modified"] == first.headers["Last-Modified"]
    assert (
        pass_json(world.client.get(url_path(card["apple_pass_url"])).data)["serialNumber"]
        == pass_json(first.data)["serialNumber"]
    )  # issued once, then the same pass
    _problem(world.client.get("/wallet/apple/not-a-card.pkpass"), 404, "card-not-found")


def test_a_closed_card_gets_a_voided_pass(world, apple_certs, openssl, tmp_path):
    card, serial, auth = issued(world)
    with world.database.transaction() as session:
        session.execute(
            text("UPDATE cards SET status = :closed, updated_at = :now"),
            {"closed": CardStatus.closed.value, "now": utcnow() + timedelta(seconds=2)},
        )
    latest = world.client.get(f"/passkit/v1/passes/{PASS_TYPE_ID}/{serial}", headers=auth)
    assert latest.status_code == 200
    document = pass_json(latest.data)
    assert document["voided"] is True and document["expirationDate"].endswith("Z")
    jsonschema.validate(document, PASS_SCHEMA)
    assert verify_like_apple(latest.data, certs=apple_certs, workdir=tmp_path, openssl=openssl) == []
    _problem(world.client.get(url_path(card["apple_pass_url"])), 404, "card-not-found")


def test_without_credentials_passes_are_a_503_problem(db, tmp_path):
    app = create_app(make_settings(db.url, apple={"certs_dir": tmp_path / "none"}), database=db.database)
    from tests.support import World

    world = World.seed(app, db.database)
    card = world.enroll()
    _problem(world.client.get(url_path(card["apple_pass_url"])), 503, "apple-wallet-unavailable")


def test_dev_certs_is_idempotent_and_the_service_warns_when_it_signs_with_them(db, tmp_path, caplog):
    settings = make_settings(db.url, apple={"certs_dir": tmp_path / "apple"}, google={"certs_dir": tmp_path / "g"})
    runner = create_app(settings, database=db.database).test_cli_runner()
    first = runner.invoke(args=["wallet", "dev-certs"])
    assert first.exit_code == 0 and "apple: development credentials for pass.dev.pointcard.loyalty" in first.output
    stamp = (tmp_path / "apple" / "pass_certificate.pem").read_bytes()
    again = runner.invoke(args=["wallet", "dev-certs"])
    assert "apple: credentials already in" in again.output
    assert (tmp_path / "apple" / "pass_certificate.pem").read_bytes() == stamp
    assert runner.invoke(args=["wallet", "dev-certs", "--force"]).exit_code == 0
    assert (tmp_path / "apple" / "pass_certificate.pem").read_bytes() != stamp
    assert oct((tmp_path / "apple" / "pass_key.pem").stat().st_mode & 0o777) == "0o600"
    real = tmp_path / "real"  # a certificate dev-certs did not make: never overwritten, even with --force
    real.mkdir()
    (real / "pass_certificate.pem").write_bytes(make_tls_files(tmp_path)[1].read_bytes())
    refused = create_dev_credentials(make_settings(db.url, apple={"certs_dir": real}), force=True)
    assert "holds real credentials" in refused and [p.name for p in real.iterdir()] == ["pass_certificate.pem"]
    caplog.clear()
    served = create_app(settings, database=db.database)
    assert not any("DEVELOPMENT" in r.getMessage() for r in caplog.records)  # quiet for CLI commands
    served.test_client().get("/healthz")
    served.test_client().get("/healthz")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert sum("DEVELOPMENT certificates" in message for message in warnings) == 1  # once, when serving


def test_credentials_for_another_pass_type_are_refused_at_start(db, apple_certs, caplog):
    settings = make_settings(db.url, apple={"certs_dir": apple_certs, "pass_type_id": "pass.other.id"})
    create_app(settings, database=db.database)
    assert any(
        "is for pass.dev.pointcard.loyalty, but POINTCARD_APPLE__PASS_TYPE_ID is pass.other.id" in r.getMessage()
        for r in caplog.records
        if r.levelname == "ERROR"
    )


# --- designs -----------------------------------------------------------------------------------


def _edit(name: str, old: str, new: str):
    def edit(directory: Path) -> None:
        path = directory / name
        content = path.read_text()
        assert old in content
        path.write_text(content.replace(old, new, 1))

    return edit


@pytest.mark.parametrize(
    ("break_design", "culprit", "words"),
    [
        (lambda d: (d / "icon@2x.png").unlink(), "icon@2x.png", "lacks required image"),
        (lambda d: (d / "logo.png").write_bytes(b"GIF89a"), "logo.png", "is not a PNG"),
        (lambda d: (d / "notes.txt").write_text("hi"), "notes.txt", "is not part of a store card design"),
        (_edit("pass.json", "{{ member.name|tojson }}", '"{{ member.name }}"'), "pass.json", "renders invalid JSON"),
        (
            _edit("pass.json", '"foregroundColor"', '"foregroundColour"'),
            "pass.json",
            "'foregroundColour' was unexpected",
        ),
        (_edit("pass.json", "rgb(60, 36, 21)", "#3c2415"), "pass.json", "at backgroundColor"),
        (_edit("pass.json", '"logoText"', '"serialNumber": "1", "logoText"'), "pass.json", "sets serialNumber"),
        (_edit("pass.json", "{{ balance }}", "{{ balanse }}"), "pass.json", "'balanse' is undefined"),
        (
            _edit("pass.json", "{{ rewards_ready }}", "{{ next_reward.points }}"),
            "pass.json",
            "has no attribute 'points'",
        ),
        (_edit("pass.json", "{% if next_reward -%}", "{% if next_reward -%"), "pass.json", "line"),
        (_edit("fr.lproj/pass.strings", '"Tier" = "Niveau";', '"Tier" = "Niveau"'), "fr.lproj/pass.strings", "line 2:"),
    ],
)
def test_a_broken_design_is_refused_at_load_naming_the_file(tmp_path, break_design, culprit, words):
    directory = tmp_path / "apple"
    shutil.copytree(DEMO_DESIGN, directory)
    load_design(directory)  # the copy itself is fine
    break_design(directory)
    with pytest.raises(DesignError) as refused:
        load_design(directory)
    assert str(directory / culprit) in str(refused.value) and words in str(refused.value)


def test_designs_are_found_per_program_and_edits_apply_without_a_restart(tmp_path):
    shutil.copytree(DEMO_DESIGN, tmp_path / "default" / "apple")
    design = design_for(tmp_path, "any-program")  # falls back to default/
    assert design.directory == tmp_path / "default" / "apple"
    assert design_for(tmp_path, "any-program", recheck_seconds=0) is design  # loaded once
    _edit("pass.json", "rgb(60, 36, 21)", "rgb(0, 0, 0)")(tmp_path / "default" / "apple")
    assert design_for(tmp_path, "any-program") is design  # trusted for a moment after a check
    edited = design_for(tmp_path, "any-program", recheck_seconds=0)  # as once that moment has passed
    assert edited is not design and edited.render(SAMPLE_CONTEXTS[0])["backgroundColor"] == "rgb(0, 0, 0)"
    with pytest.raises(DesignError, match="no Apple pass design for program 'x'"):
        design_for(tmp_path / "empty", "x")


# --- stores on the lock screen -----------------------------------------------------------------


def test_nearest_stores_are_the_ten_closest_active_ones(world):
    with world.database.transaction() as session:
        program = session.scalar(select(Program))
        for index in range(12):  # a line of stores going north from downtown Portland
            session.add(
                Store(
                    program_id=program.id,
                    name=f"North {index}",
                    latitude=45.52 + 0.05 * (index + 1),
                    longitude=-122.68,
                    timezone="America/Los_Angeles",
                    active=index != 0,
                )
            )
        session.flush()
        found = nearest_stores(session=session, program=program, latitude=45.52, longitude=-122.68)
        names = [store.name for store in found]
    assert len(found) == 10 and "North 0" not in names
    assert names[:3] == ["Pointcard Coffee, Pearl District", "Pointcard Coffee, Hawthorne", "Pointcard Coffee, Alberta"]
    assert names[3:] == [f"North {i}" for i in range(1, 8)]
    assert 230_000 < distance_m(45.5152, -122.6784, 47.6062, -122.3321) < 236_000  # Portland to Seattle


# --- the PassKit web service and the pushes ----------------------------------------------------


def test_a_device_follows_apples_sequence_from_download_to_unregister(
    world, apns, senders, apple_certs, openssl, tmp_path
):
    card = world.enroll(email="ada@example.com")
    downloaded = world.client.get(url_path(card["apple_pass_url"]))
    document = pass_json(downloaded.data)
    serial, auth = document["serialNumber"], {"Authorization": f"ApplePass {document['authenticationToken']}"}

    assert register(world, serial, auth) == 201
    assert register(world, serial, auth) == 200  # already registered
    listed = world.client.get(serials_url())
    assert listed.status_code == 200 and listed.get_json()["serialNumbers"] == [serial]
    tag = listed.get_json()["lastUpdated"]
    assert isinstance(tag, str)
    assert world.client.get(serials_url(), query_string={"passesUpdatedSince": tag}).status_code == 204

    # Points earned at the till: the push leaves only when the worker drains the outbox.
    assert world.purchase(card["barcode"], "12.00").status_code == 201
    assert apns.pushes == []
    assert drain_once(database=world.database, senders=senders) == 1
    [push] = apns.pushes
    assert (push.device_token, push.topic, push.http_version, push.body) == (PUSH_TOKEN, PASS_TYPE_ID, "2", {})
    assert push.jwt_header["alg"] == "ES256" and push.jwt_header["kid"] == DEV_APNS_KEY_ID
    assert push.jwt_claims["iss"] == TEAM_ID and apns.refusals == []
    assert [m.state for m in messages(world)] == [MessageState.sent]

    changed = world.client.get(serials_url(), query_string={"passesUpdatedSince": tag})
    assert changed.status_code == 200 and changed.get_json()["serialNumbers"] == [serial]
    new_tag = changed.get_json()["lastUpdated"]
    assert int(new_tag) > int(tag)

    latest_url = f"/passkit/v1/passes/{PASS_TYPE_ID}/{serial}"
    latest = world.client.get(latest_url, headers={**auth, "If-Modified-Since": downloaded.headers["Last-Modified"]})
    assert latest.status_code == 200 and latest.mimetype == "application/vnd.apple.pkpass"
    assert parsedate_to_datetime(latest.headers["Last-Modified"]) > parsedate_to_datetime(
        downloaded.headers["Last-Modified"]
    )
    assert field(pass_json(latest.data), "balance")["value"] == 50 + 120
    assert verify_like_apple(latest.data, certs=apple_certs, workdir=tmp_path, openssl=openssl) == []

    unchanged = world.client.get(latest_url, headers={**auth, "If-Modified-Since": latest.headers["Last-Modified"]})
    assert unchanged.status_code == 304 and unchanged.headers["Last-Modified"] == latest.headers["Last-Modified"]
    assert world.client.get(serials_url(), query_string={"passesUpdatedSince": new_tag}).status_code == 204

    assert world.client.delete(registration_url(serial), headers=auth).status_code == 200
    assert world.client.get(serials_url()).status_code == 204
    world.purchase(card["barcode"], "1.00")
    assert drain_once(database=world.database, senders=senders) == 0


def test_a_410_from_apns_removes_that_device_only(world, apns, senders):
    card, serial, auth = issued(world)
    assert register(world, serial, auth) == 201
    assert register(world, serial, auth, device=OTHER_DEVICE, push_token=OTHER_PUSH_TOKEN) == 201
    apns.respond(PUSH_TOKEN, 410, "Unregistered")
    world.purchase(card["barcode"], "3.00")
    assert drain_once(database=world.database, senders=senders) == 2
    states = {m.content["push_token"]: m for m in messages(world)}
    assert states[PUSH_TOKEN].state is MessageState.failed and "410" in states[PUSH_TOKEN].error
    assert states[OTHER_PUSH_TOKEN].state is MessageState.sent
    with world.database.transaction() as session:
        assert session.scalars(select(AppleDeviceRegistration.device_library_id)).all() == [OTHER_DEVICE]
    assert world.client.get(serials_url()).status_code == 204

    world.purchase(card["barcode"], "3.00")
    assert drain_once(database=world.database, senders=senders) == 1
    assert [p.device_token for p in apns.pushes] == [PUSH_TOKEN, OTHER_PUSH_TOKEN, OTHER_PUSH_TOKEN]


@pytest.mark.parametrize(("status", "reason"), [(429, "TooManyRequests"), (503, "ServiceUnavailable")])
def test_throttling_and_outages_requeue_the_push_after_retry_after(world, apns, senders, status, reason):
    card, serial, auth = issued(world)
    register(world, serial, auth)
    apns.respond(PUSH_TOKEN, status, reason, headers={"Retry-After": "120"})
    world.purchase(card["barcode"], "3.00")
    before = utcnow()
    assert drain_once(database=world.database, senders=senders) == 1
    [message] = messages(world)
    assert message.state is MessageState.queued and message.attempts == 1 and str(status) in message.error
    assert message.not_before >= before + timedelta(seconds=120)
    assert drain_once(database=world.database, senders=senders) == 0  # not due yet
    with world.database.transaction() as session:
        session.execute(text("UPDATE messages SET not_before = :now"), {"now": utcnow() - timedelta(seconds=1)})
    assert drain_once(database=world.database, senders=senders) == 1
    assert messages(world)[0].state is MessageState.sent
    first, second = apns.pushes
    assert first.bearer == second.bearer  # the provider token is reused, not signed per push
    with world.database.transaction() as session:
        assert len(session.scalars(select(AppleDeviceRegistration)).all()) == 1


def test_the_web_service_wants_the_pass_token(world):
    _, serial, auth = issued(world)
    right = auth["Authorization"].removeprefix("ApplePass ")
    for headers in (
        {},
        {"Authorization": "ApplePass " + right[:-1] + "x"},
        {"Authorization": f"Bearer {right}"},
        {"Authorization": "ApplePass"},
    ):
        body = _problem(
            world.client.post(registration_url(serial), json={"pushToken": PUSH_TOKEN}, headers=headers),
            401,
            "pass-authentication-failed",
        )
        assert "ApplePass" in body["detail"]
        _problem(world.client.get(f"/passkit/v1/passes/{PASS_TYPE_ID}/{serial}", headers=headers), 401)
    response = world.client.post(registration_url("not-a-serial"), json={"pushToken": PUSH_TOKEN}, headers=auth)
    _problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("ApplePass")
    _problem(
        world.client.post(
            f"/passkit/v1/devices/{DEVICE}/registrations/pass.other/{serial}",
            json={"pushToken": PUSH_TOKEN},
            headers=auth,
        ),
        404,
        "pass-not-found",
    )
    _problem(world.client.post(registration_url(serial), json={"pushToken": "not hex!"}, headers=auth), 422)

    assert register(world, serial, auth) == 201
    _problem(world.client.delete(registration_url(serial), headers={"Authorization": "ApplePass nope"}), 401)
    assert world.client.get(serials_url()).get_json()["serialNumbers"] == [serial]  # still registered
    assert world.client.get(serials_url("unknown-device")).status_code == 204
    assert world.client.get(f"/passkit/v1/devices/{DEVICE}/registrations/pass.other").status_code == 204
    assert world.client.post("/passkit/v1/log", json={"logs": ["Web service error for pass..."]}).status_code == 200


def test_one_push_per_device_per_transaction_from_requests_and_jobs_alike(world, apns, senders):
    card, serial, auth = issued(world)
    register(world, serial, auth)
    register(world, serial, auth, device=OTHER_DEVICE, push_token=OTHER_PUSH_TOKEN)
    # 60 dollars: points and a new tier (two events), one update of the pass.
    assert world.purchase(card["barcode"], "60.00").get_json()["tier"] == "Silver"
    assert len(messages(world)) == 2
    # A staff correction outside any request (as a job or the CLI would run it) pushes too.
    with world.database.transaction() as session:
        adjust_points(
            session=session,
            customer_id=card["customer_id"],
            points=5,
            reason="goodwill",
            staff_user_id=world.staff[Role.admin].id,
        )
    assert len(messages(world)) == 4
    # A transaction that rolls back leaves nothing to push.
    with pytest.raises(RuntimeError), world.database.transaction() as session:
        adjust_points(
            session=session,
            customer_id=card["customer_id"],
            points=5,
            reason="oops",
            staff_user_id=world.staff[Role.admin].id,
        )
        raise RuntimeError("rolled back")
    assert len(messages(world)) == 4
    assert drain_once(database=world.database, senders=senders) == 4
    document = pass_json(world.client.get(f"/passkit/v1/passes/{PASS_TYPE_ID}/{serial}", headers=auth).data)
    assert field(document, "tier")["value"] == "Silver" and field(document, "balance")["value"] == 50 + 600 + 5


def test_customers_without_a_pass_get_no_pushes(world):
    card = world.enroll()
    world.purchase(card["barcode"], "3.00")
    assert messages(world) == []


def test_the_provider_token_is_reused_until_it_nears_an_hour(apple_certs):
    key = serialization.load_pem_private_key((apple_certs / "apns_key.p8").read_bytes(), password=None)
    now = [1_700_000_000.0]
    token = ProviderToken(key=key, key_id="KEY1234567", team_id=TEAM_ID, clock=lambda: now[0])
    first = token.current()
    now[0] += 49 * 60
    assert token.current() == first
    now[0] += 61
    renewed = token.current()
    assert renewed != first
    header = jwt.get_unverified_header(renewed)
    claims = jwt.decode(renewed, key.public_key(), algorithms=["ES256"], options={"verify_iat": False})
    assert header["kid"] == "KEY1234567" and claims == {"iss": TEAM_ID, "iat": int(now[0])}
    token.discard()  # APNs called it expired: the next push signs afresh
    assert token.current() != renewed


def test_without_a_p8_key_the_pass_certificate_authenticates_to_apns(db, apple_certs, tmp_path):
    certs = tmp_path / "certs"
    shutil.copytree(apple_certs, certs, ignore=shutil.ignore_patterns("apns_key.*"))
    chain = tmp_path / "client-ca.pem"
    chain.write_bytes((apple_certs / "dev_root_ca.pem").read_bytes() + (apple_certs / "wwdr_g4.pem").read_bytes())
    server = FakeApns(directory=tmp_path, topic=PASS_TYPE_ID, team_id=TEAM_ID, client_ca=chain).start()
    try:
        app = create_app(
            make_settings(db.url, apple={"certs_dir": certs, "apns_host": server.url, "apns_ca_file": server.ca_file}),
            database=db.database,
        )
        pusher = make_pusher(app.extensions["pointcard"])
        try:
            message = Message(
                id=1,
                channel="apple_wallet",
                content={"push_token": PUSH_TOKEN, "registration_id": 0, "serial_number": "s"},
            )
            assert pusher.send(message)
        finally:
            pusher.close()
        [push] = server.pushes
        assert push.bearer is None and push.http_version == "2" and server.refusals == []
    finally:
        server.stop()


def test_with_dev_credentials_pushes_to_apple_itself_are_only_logged(db, apple_certs):
    app = create_app(make_settings(db.url, apple={"certs_dir": apple_certs}), database=db.database)
    pusher = make_pusher(app.extensions["pointcard"])
    assert isinstance(pusher, ConsolePusher)
    assert pusher.send(Message(id=7, content={"push_token": PUSH_TOKEN, "serial_number": "s"})) == "console-7"


def test_the_pass_is_built_from_the_card_as_it_is_now(world):
    card, serial, auth = issued(world)
    register(world, serial, auth)
    before = len(messages(world))
    rotated = world.client.post(
        f"/api/v1/customers/{card['customer_id']}/card/rotate", headers=world.headers(Role.admin)
    )
    latest = world.client.get(f"/passkit/v1/passes/{PASS_TYPE_ID}/{serial}", headers=auth)
    assert pass_json(latest.data)["barcodes"][0]["message"] == rotated.get_json()["barcode"] != card["barcode"]
    assert len(messages(world)) == before + 1  # the phone is told to fetch the new barcode
