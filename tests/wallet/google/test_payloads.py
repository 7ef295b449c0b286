"""Google Wallet class and object payloads: Google's own schema, ids, barcode, design templates."""

import re
import shutil

import pytest
from sqlalchemy import select

from app.loyalty.models import BarcodeFormat, Card, Program, Store
from app.wallet.google import service
from app.wallet.google.payloads import MAX_MERCHANT_LOCATIONS, google_id
from tests.fakes.google import ISSUER_ID
from tests.fakes.walletobjects import schema_errors

GOOGLE_ID = re.compile(r"^\d+\.[A-Za-z0-9._-]+$")


@pytest.fixture
def settings_overrides(tmp_path):
    return {"google": {"issuer_id": ISSUER_ID, "certs_dir": tmp_path / "certs"}}


def _payloads(world, customer_id):
    wallet = world.app.extensions["pointcard"].google_wallet
    with world.database.transaction() as session:
        card = session.scalar(select(Card).where(Card.customer_id == customer_id))
        program = session.scalar(select(Program))
        return (
            service.class_payload(session=session, program=program, wallet=wallet),
            service.object_payload(session=session, card=card, wallet=wallet),
        )


def test_class_object_and_message_match_googles_published_schema(world):
    card = world.enroll(email="ada@example.com")
    world.purchase(card["barcode"], "60.00")  # Silver, and a reward within reach
    cls, obj = _payloads(world, card["customer_id"])
    assert schema_errors(cls, "LoyaltyClass") == []
    assert schema_errors(obj, "LoyaltyObject") == []
    message = {
        "message": {"id": "m1", "header": "Double points", "body": "All weekend.", "messageType": "TEXT_AND_NOTIFY"}
    }
    assert schema_errors(message, "AddMessageRequest") == []
    assert schema_errors({**obj, "notifyPreference": "NOTIFY_ON_UPDATE"}, "LoyaltyObject") == []


def test_the_schema_check_refuses_what_google_would(world):
    card = world.enroll()
    cls, obj = _payloads(world, card["customer_id"])
    broken = {
        **obj,
        "loyaltyPoints": {"label": "Points", "balance": {"int": "50"}},
        "colour": "#fff",
        "state": "LIVE",
        "infoModuleData": {},
    }
    del broken["classId"]
    errors = "\n".join(schema_errors(broken, "LoyaltyObject"))
    for expected in (
        "loyaltyPoints.balance.int: expected an integer",
        "colour: LoyaltyObject has no such field",
        "state: 'LIVE' is not one of",
        "infoModuleData: deprecated",
        "classId: required",
    ):
        assert expected in errors
    without_logo = {key: value for key, value in cls.items() if key != "programLogo"}
    assert "LoyaltyClass.programLogo: required" in "\n".join(schema_errors(without_logo, "LoyaltyClass"))


def test_ids_are_the_issuer_id_and_a_suffix_of_allowed_characters(world):
    card = world.enroll()
    cls, obj = _payloads(world, card["customer_id"])
    assert GOOGLE_ID.match(cls["id"]) and GOOGLE_ID.match(obj["id"])
    assert cls["id"].startswith(ISSUER_ID + ".") and obj["id"].startswith(ISSUER_ID + ".")
    assert obj["classId"] == cls["id"] and obj["accountId"] == card["member_number"]
    assert google_id("3388", "coffee & tea/north") == "3388.coffee___tea_north"


def test_the_class_names_the_program_logo_callback_and_at_most_ten_stores(world):
    with world.database.transaction() as session:
        session.add_all(
            [
                Store(
                    program_id=world.program_id,
                    name=f"Kiosk {n}",
                    latitude=45 + n / 100,
                    longitude=-122.5,
                    timezone="America/Los_Angeles",
                )
                for n in range(12)
            ]
        )
    card = world.enroll()
    cls, _ = _payloads(world, card["customer_id"])
    assert len(cls["merchantLocations"]) == MAX_MERCHANT_LOCATIONS
    assert cls["merchantLocations"][0] == {"latitude": 45.5265, "longitude": -122.6842}
    assert cls["reviewStatus"] == "UNDER_REVIEW"
    assert cls["callbackOptions"]["url"] == "http://card.test/wallet/google/callback"
    assert cls["programName"] == "Pointcard Coffee" and cls["hexBackgroundColor"].startswith("#")
    with world.client.get(cls["programLogo"]["sourceUri"]["uri"].removeprefix("http://card.test")) as logo:
        assert logo.status_code == 200 and logo.mimetype == "image/png"
        assert logo.get_data().startswith(b"\x89PNG")
    assert world.client.get("/wallet/google/assets/demo/loyalty_class.json.j2").status_code == 404
    assert world.client.get("/wallet/google/assets/..%2Fdemo/logo.png").status_code == 404


@pytest.mark.parametrize(
    ("barcode_format", "google_type"),
    [
        (BarcodeFormat.qr, "QR_CODE"),
        (BarcodeFormat.pdf417, "PDF_417"),
        (BarcodeFormat.aztec, "AZTEC"),
        (BarcodeFormat.code128, "CODE_128"),
    ],
)
def test_the_barcode_is_the_cards_token_in_the_programs_format(world, barcode_format, google_type):
    with world.database.transaction() as session:
        session.scalar(select(Program)).barcode_format = barcode_format
    card = world.enroll()
    _, obj = _payloads(world, card["customer_id"])
    assert obj["barcode"] == {"type": google_type, "value": card["barcode"], "alternateText": card["member_number"]}
    assert schema_errors(obj, "LoyaltyObject") == []


def test_the_object_shows_balance_tier_next_reward_and_the_card_page(world):
    card = world.enroll(name="Grace Hopper")
    _, fresh = _payloads(world, card["customer_id"])
    assert fresh["state"] == "ACTIVE" and fresh["accountName"] == "Grace Hopper"
    assert fresh["loyaltyPoints"]["balance"] == {"int": 50}
    assert fresh["secondaryLoyaltyPoints"] == {"label": "Tier", "balance": {"string": "Bronze"}}
    assert fresh["textModulesData"][0]["body"] == "Free drip coffee in 250 points"
    assert fresh["linksModuleData"]["uris"][0]["uri"] == card["card_url"]
    world.purchase(card["barcode"], "50.00")
    _, later = _payloads(world, card["customer_id"])
    assert later["loyaltyPoints"]["balance"] == {"int": 550}
    assert later["secondaryLoyaltyPoints"]["balance"] == {"string": "Silver"}
    assert later["textModulesData"][0]["body"] == "Ready to redeem: $5 off"
    assert "messages" not in later and "notifyPreference" not in later


class TestDesignTemplates:
    @pytest.fixture
    def templates(self, tmp_path):
        from app.wallet.google.config import DEFAULT_TEMPLATES_DIR

        root = tmp_path / "wallet_templates"
        shutil.copytree(DEFAULT_TEMPLATES_DIR / "demo" / "google", root / "default" / "google")
        return root

    @pytest.fixture
    def settings_overrides(self, tmp_path, templates):
        return {"google": {"issuer_id": ISSUER_ID, "certs_dir": tmp_path / "certs", "templates_dir": templates}}

    def test_a_designers_change_shows_and_a_program_without_its_own_design_uses_default(self, world, templates):
        path = templates / "default" / "google" / "loyalty_class.json.j2"
        path.write_text(path.read_text().replace("#3b2417", "#123456").replace('"UNDER_REVIEW"', '"DRAFT"'))
        card = world.enroll()
        cls, obj = _payloads(world, card["customer_id"])
        assert cls["hexBackgroundColor"] == "#123456"
        assert cls["reviewStatus"] == "UNDER_REVIEW"  # never DRAFT: a draft class holds no objects
        assert schema_errors(obj, "LoyaltyObject") == []

    def test_a_template_listing_too_many_stores_is_refused(self, world, templates):
        path = templates / "default" / "google" / "loyalty_class.json.j2"
        eleven = ", ".join('{"latitude": 1, "longitude": 2}' for _ in range(11))
        text = path.read_text()
        start = text.index('"merchantLocations"')
        path.write_text(text[:start] + f'"merchantLocations": [{eleven}]\n}}\n')
        card = world.enroll()
        with pytest.raises(ValueError, match="more than 10"):
            _payloads(world, card["customer_id"])
