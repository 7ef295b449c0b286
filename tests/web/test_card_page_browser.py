"""The customer's card page /card/<secret> in a real headless Chromium, served over HTTP.

Playwright's auto-waiting assertions do all the waiting: no sleeps.
"""

from __future__ import annotations

import base64
import re

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect
from sqlalchemy import select

from app.geo import service as geo_service
from app.geo.config import GeoSettings
from app.geo.schemas import GeoOfferCreate
from app.loyalty.models import Card, Channel, Customer, Referral, Store
from app.loyalty.service import current_consents
from app.messaging.models import Message
from app.messaging.vapid import generate_vapid_key

pytestmark = pytest.mark.browser

# Records what push.js hands to the browser's PushManager.subscribe, then lets the real call
# run. The browser's push service (FCM for Chromium) is unreachable offline, and headless
# Chromium refuses the registration before trying ("Registration failed - permission denied"
# even with notifications granted): the path is tested up to that browser call, no further.
SPY_ON_SUBSCRIBE = """
window.__pushCalls = [];
const realSubscribe = PushManager.prototype.subscribe;
PushManager.prototype.subscribe = function (options) {
  const key = btoa(String.fromCharCode(...new Uint8Array(options.applicationServerKey)));
  window.__pushCalls.push({ userVisibleOnly: options.userVisibleOnly, key });
  return realSubscribe.call(this, options).catch((error) => {
    window.__pushCalls.push({ error: String(error) });
    // A DOM mark to wait on: the page's CSP forbids the eval that wait_for_function would need.
    document.documentElement.dataset.pushSettled = "yes";
    return new Promise(() => {});  // the page waits forever, as it would for a slow push service
  });
};
"""


@pytest.fixture
def vapid_key(tmp_path):
    path = tmp_path / "vapid_private.pem"
    _, public = generate_vapid_key(path)
    return path, public


@pytest.fixture
def settings_overrides(vapid_key):
    return {"messaging": {"vapid_private_key_file": vapid_key[0]}}


# The app's public_base_url in tests: the links the API returns (card_url) point there.
PUBLIC_BASE_URL = "http://card.test"


def open_page(browser, live_server, *, geolocation: dict | None = None, locale: str = "en-US", scripts: bool = True):
    context = browser.new_context(
        base_url=live_server,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        locale=locale,
        geolocation=geolocation,
        timezone_id="Europe/Paris",
        permissions=["geolocation", "notifications"] if geolocation else [],
        java_script_enabled=scripts,
    )
    context.set_default_timeout(5_000)
    # The browser reaches public_base_url through the live server, as DNS would send it to the app.
    context.route(PUBLIC_BASE_URL + "/**", lambda route: _through(route, live_server))
    page = context.new_page()
    errors, foreign, broken = [], [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith((live_server + "/", PUBLIC_BASE_URL + "/", "data:"))
            else foreign.append(request.url)
        ),
    )
    page.on(
        "response",
        lambda response: (
            broken.append(response.url) if response.status >= 400 and "/api/" not in response.url else None
        ),
    )
    return context, page, (errors, foreign, broken)


def _through(route, live_server: str) -> None:
    try:
        route.fulfill(response=route.fetch(url=route.request.url.replace(PUBLIC_BASE_URL, live_server, 1)))
    except PlaywrightError as error:
        # Only a request still in flight when its test closed the page may fail here; left
        # unhandled, the error would surface in whichever test runs next.
        if "disposed" not in str(error) and "closed" not in str(error):
            raise


@pytest.fixture
def card(world):
    return world.enroll("Ada Lovelace", email="ada@example.com")


@pytest.fixture
def store(world):
    with world.database.transaction() as session:
        found = session.get(Store, world.store_ids[0])
        return {"id": found.id, "latitude": found.latitude, "longitude": found.longitude}


def card_path(card: dict) -> str:
    return card["card_url"].removeprefix(PUBLIC_BASE_URL)


def close(context, problems) -> None:
    context.close()
    assert problems == ([], [], [])


def test_the_card_page_renders_with_its_wallet_buttons(browser, live_server, world, card):
    context, page, problems = open_page(browser, live_server)
    page.goto(card_path(card))
    expect(page.get_by_test_id("balance")).to_have_text("50")
    expect(page.get_by_test_id("member-number")).to_have_text(card["member_number"])
    expect(page.get_by_test_id("apple-wallet")).to_have_attribute("href", card["apple_pass_url"])
    expect(page.get_by_test_id("google-wallet")).to_have_attribute("href", card["google_save_url"])
    for wallet in ("apple", "google"):  # the artwork loaded (a broken image has no natural width)
        expect(page.get_by_test_id(f"{wallet}-wallet").locator("img")).not_to_have_js_property("naturalWidth", 0)
    expect(page.get_by_test_id("rewards")).to_contain_text("points")
    expect(page.get_by_test_id("history")).to_contain_text("+50")
    expect(page.get_by_test_id("tier-progress")).to_be_visible()
    expect(page.get_by_test_id("referral-code")).not_to_be_empty()
    close(context, problems)


def test_the_card_page_speaks_french(browser, live_server, world, card):
    context, page, problems = open_page(browser, live_server, locale="fr-FR")
    page.goto(card_path(card))
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    # By accessible name: the look-alike's words or the official badge's alt text, in French.
    expect(page.get_by_role("link", name="Ajouter à Google Wallet")).to_have_attribute("href", card["google_save_url"])
    expect(page.get_by_role("link", name="Ajouter à Apple Wallet")).to_have_attribute("href", card["apple_pass_url"])
    page.goto(card_path(card) + "?lang=en")
    expect(page.get_by_role("link", name="Add to Google Wallet")).to_have_attribute("href", card["google_save_url"])
    close(context, problems)


def test_offers_near_me_queues_exactly_one_offer(browser, live_server, world, card, store):
    with world.database.transaction() as session:
        geo_service.save_offer(
            session=session,
            program_id=world.program_id,
            settings=GeoSettings(),
            body=GeoOfferCreate(
                title="Free cookie", body="Show this at the till", store_ids=[store["id"]], radius_m=150
            ),
        )
    near = {"latitude": store["latitude"] + 0.0005, "longitude": store["longitude"], "accuracy": 10}  # ~56 m
    context, page, problems = open_page(browser, live_server, geolocation=near)
    page.goto(card_path(card))
    page.get_by_role("button", name="Offers near me").click()
    expect(page.locator("[data-near-offers] li")).to_have_text(re.compile("Free cookie"))
    expect(page.locator('[data-consent="location"]')).to_be_checked()
    with world.database.transaction() as session:
        offers = session.scalars(
            select(Message).where(Message.customer_id == card["customer_id"], Message.template.like("geo-offer:%"))
        ).all()
    assert [(m.channel, m.content["title"]) for m in offers] == [("push", "Free cookie")]
    close(context, problems)


def test_a_consent_toggle_is_recorded(browser, live_server, world, card):
    context, page, problems = open_page(browser, live_server)
    page.goto(card_path(card))
    page.locator('[data-consent="sms"]').check()
    expect(page.locator("[data-consent-status]")).to_have_text("Saved")
    with world.database.transaction() as session:
        sms = current_consents(session=session, customer_id=card["customer_id"])[Channel.sms]
        assert (sms.granted, sms.source) == (True, "card-page") and "I agree" in sms.disclosure
    close(context, problems)


def test_the_push_button_subscribes_with_the_vapid_key_up_to_the_browser(browser, live_server, world, card, vapid_key):
    context, page, problems = open_page(browser, live_server, geolocation={"latitude": 0, "longitude": 0})
    page.add_init_script(SPY_ON_SUBSCRIBE)
    page.goto(card_path(card))
    button = page.locator("[data-push-toggle]")
    expect(button).to_be_enabled()  # push.js registered the service worker and rendered
    expect(button).to_have_text("Get offers")
    button.click()
    expect(page.locator("html")).to_have_attribute("data-push-settled", "yes")
    calls = page.evaluate("window.__pushCalls")
    key = base64.urlsafe_b64decode(vapid_key[1] + "=" * (-len(vapid_key[1]) % 4))
    assert calls[0] == {"userVisibleOnly": True, "key": base64.b64encode(key).decode()}
    assert calls[1]["error"].startswith("AbortError: Registration failed"), calls
    close(context, problems)


# Headless Chromium cannot subscribe (see above): an existing subscription is stood in for, so
# the page shows its "offers are on" label.
ALREADY_SUBSCRIBED = """
PushManager.prototype.getSubscription = async function () {
  return { endpoint: "https://push.invalid/subscription", unsubscribe: async () => true };
};
"""


def test_the_push_button_keeps_the_pages_language(browser, live_server, world, card):
    context, page, problems = open_page(browser, live_server, locale="fr-FR")
    page.goto(card_path(card))
    button = page.locator("[data-push-toggle]")
    expect(button).to_be_enabled()  # push.js has rendered its label
    expect(button).to_have_text("Recevoir les offres")
    subscribed = context.new_page()
    subscribed.add_init_script(ALREADY_SUBSCRIBED)
    subscribed.goto(card_path(card))
    expect(subscribed.locator("[data-push-toggle]")).to_be_enabled()
    expect(subscribed.locator("[data-push-toggle]")).to_have_text("Ne plus recevoir les offres")
    close(context, problems)


# --- the sign-up page /join ---------------------------------------------------------------


def fill_sign_up(page, *, first="Grace", last="Hopper", email="", phone="", referral_code=None):
    page.locator('input[name="first_name"]').fill(first)
    page.locator('input[name="last_name"]').fill(last)
    page.locator('input[name="email"]').fill(email)
    page.locator('input[name="phone"]').fill(phone)
    if referral_code is not None:
        page.locator('input[name="referral_code"]').fill(referral_code)


def test_the_sign_up_page_renders_in_english_and_french(browser, live_server, world):
    for locale, title, button, hint in (
        ("en-US", "Join Pointcard Coffee", "Create my card", "Give an email address, a phone number or both."),
        ("fr-FR", "Rejoindre Pointcard Coffee", "Créer ma carte", "Indiquez une adresse e-mail, un numéro"),
    ):
        context, page, problems = open_page(browser, live_server, locale=locale)
        page.goto("/join")
        expect(page.locator("html")).to_have_attribute("lang", locale[:2])
        expect(page.get_by_role("heading", name=title)).to_be_visible()
        fill_sign_up(page)  # neither email nor phone: the page says so before asking the API
        page.get_by_role("button", name=button).click()
        expect(page.locator("[data-join-errors]")).to_contain_text(hint)
        close(context, problems)


def test_signing_up_with_a_referral_code_opens_the_new_card(browser, live_server, world, card):
    context, page, problems = open_page(browser, live_server)
    page.goto(f"/?ref={card['referral_code']}")  # the front door sends a shared link on to /join
    expect(page.get_by_test_id("referral-note")).to_contain_text("A friend invited you")
    expect(page.get_by_test_id("referral-code")).to_have_value(card["referral_code"])
    fill_sign_up(page, email="grace@example.com")
    page.get_by_role("checkbox", name="Text messages").check()
    page.get_by_role("button", name="Create my card").click()
    expect(page).to_have_url(re.compile(r"^http://card\.test/card/"))
    expect(page.get_by_role("heading", name="Grace")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_have_text("50")  # the signup bonus
    with world.database.transaction() as session:
        grace = session.scalar(select(Customer).where(Customer.first_name == "Grace"))
        referral = session.scalar(select(Referral).where(Referral.referee_id == grace.id))
        assert (referral.referrer_id, referral.rewarded_at) == (card["customer_id"], None)
        sms = current_consents(session=session, customer_id=grace.id)[Channel.sms]
        assert sms.granted and sms.source == "enrolment" and "I agree to receive offers" in sms.disclosure
        assert grace.timezone == "Europe/Paris"  # the browser's, sent by join.js
        barcode = session.scalar(select(Card.barcode_token).where(Card.customer_id == grace.id))
    # The referral pays on the referee's first purchase (app/loyalty/transactions.py), both sides.
    before = world.balance(card["customer_id"])
    assert world.purchase(barcode, "1.00").status_code == 201
    assert world.balance(card["customer_id"]) == before + 100
    close(context, problems)


def test_bad_input_shows_the_apis_detail_beside_the_form(browser, live_server, world):
    context, page, problems = open_page(browser, live_server)
    page.goto("/join?ref=NOPE2345")
    expect(page.get_by_test_id("referral-note")).to_contain_text("NOPE2345")
    expect(page.get_by_test_id("referral-code")).to_have_value("")  # not kept: it would only fail
    errors = page.locator("[data-join-errors]")
    fill_sign_up(page, phone="12345")
    page.get_by_role("button", name="Create my card").click()
    expect(errors).to_contain_text("The request has invalid fields: phone.")
    expect(errors).to_contain_text("international format")
    fill_sign_up(page, email="grace@example.com", referral_code="NOPE2345")
    page.get_by_role("button", name="Create my card").click()
    expect(errors).to_contain_text("The referral code is not known.")
    expect(errors).not_to_contain_text("phone")
    expect(page.get_by_role("button", name="Create my card")).to_be_enabled()
    assert page.url.startswith(live_server + "/join")
    with world.database.transaction() as session:
        assert session.scalar(select(Customer).where(Customer.first_name == "Grace")) is None
    close(context, problems)


def test_with_scripts_off_the_form_still_enrols(browser, live_server, world, card):
    context, page, problems = open_page(browser, live_server, locale="fr-FR", scripts=False)
    page.goto(f"/join?ref={card['referral_code']}")
    expect(page.locator("noscript")).to_have_count(1)
    fill_sign_up(page, phone="+33 6 12 34 56 78")
    page.get_by_role("button", name="Créer ma carte").click()  # a plain POST /join, answered by a 303
    expect(page).to_have_url(re.compile(r"^http://card\.test/card/"))
    expect(page.get_by_test_id("balance")).to_have_text("50")
    expect(page.locator("[data-push-toggle]")).to_be_disabled()  # nothing to drive it without scripts
    with world.database.transaction() as session:
        grace = session.scalar(select(Customer).where(Customer.first_name == "Grace"))
        referrer_id = session.scalar(select(Referral.referrer_id).where(Referral.referee_id == grace.id))
        assert referrer_id == card["customer_id"]
    close(context, problems)
