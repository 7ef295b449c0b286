"""The customer's card page /card/<secret> in a real headless Chromium, served over HTTP.

Playwright's auto-waiting assertions do all the waiting: no sleeps.
"""

from __future__ import annotations

import base64
import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.geo import service as geo_service
from app.geo.config import GeoSettings
from app.geo.schemas import GeoOfferCreate
from app.loyalty.models import Channel, Store
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


def open_page(browser, live_server, *, geolocation: dict | None = None, locale: str = "en-US"):
    context = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, locale=locale, geolocation=geolocation,
                                  permissions=["geolocation", "notifications"] if geolocation else [])
    context.set_default_timeout(5_000)
    page = context.new_page()
    errors, foreign, broken = [], [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: None if request.url.startswith((live_server + "/", "data:"))
            else foreign.append(request.url))
    page.on("response", lambda response: broken.append(response.url)
            if response.status >= 400 and "/api/" not in response.url else None)
    return context, page, (errors, foreign, broken)


@pytest.fixture
def card(world):
    return world.enroll("Ada Lovelace", email="ada@example.com")


@pytest.fixture
def store(world):
    with world.database.transaction() as session:
        found = session.get(Store, world.store_ids[0])
        return {"id": found.id, "latitude": found.latitude, "longitude": found.longitude}


def card_path(card: dict) -> str:
    return card["card_url"].removeprefix("http://card.test")


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
    expect(page.get_by_test_id("apple-wallet").locator("img")).to_have_js_property("naturalWidth", 40)
    expect(page.get_by_test_id("rewards")).to_contain_text("points")
    expect(page.get_by_test_id("history")).to_contain_text("+50")
    expect(page.get_by_test_id("tier-progress")).to_be_visible()
    expect(page.get_by_test_id("referral-code")).not_to_be_empty()
    close(context, problems)


def test_the_card_page_speaks_french(browser, live_server, world, card):
    context, page, problems = open_page(browser, live_server, locale="fr-FR")
    page.goto(card_path(card))
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_test_id("google-wallet")).to_have_text(re.compile("Ajouter à Google Wallet"))
    page.goto(card_path(card) + "?lang=en")
    expect(page.get_by_test_id("google-wallet")).to_have_text(re.compile("Add to Google Wallet"))
    close(context, problems)


def test_offers_near_me_queues_exactly_one_offer(browser, live_server, world, card, store):
    with world.database.transaction() as session:
        geo_service.save_offer(session=session, program_id=world.program_id, settings=GeoSettings(),
                               body=GeoOfferCreate(title="Free cookie", body="Show this at the till",
                                                   store_ids=[store["id"]], radius_m=150))
    near = {"latitude": store["latitude"] + 0.0005, "longitude": store["longitude"], "accuracy": 10}  # ~56 m
    context, page, problems = open_page(browser, live_server, geolocation=near)
    page.goto(card_path(card))
    page.get_by_role("button", name="Offers near me").click()
    expect(page.locator("[data-near-offers] li")).to_have_text(re.compile("Free cookie"))
    expect(page.locator('[data-consent="location"]')).to_be_checked()
    with world.database.transaction() as session:
        offers = session.scalars(select(Message).where(Message.customer_id == card["customer_id"],
                                                       Message.template.like("geo-offer:%"))).all()
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


def test_the_push_button_subscribes_with_the_vapid_key_up_to_the_browser(browser, live_server, world, card,
                                                                        vapid_key):
    context, page, problems = open_page(browser, live_server, geolocation={"latitude": 0, "longitude": 0})
    page.add_init_script(SPY_ON_SUBSCRIBE)
    page.goto(card_path(card))
    button = page.locator("[data-push-toggle]")
    expect(button).to_have_text("Get offers")  # push.js registered the service worker and rendered
    button.click()
    expect(page.locator("html")).to_have_attribute("data-push-settled", "yes")
    calls = page.evaluate("window.__pushCalls")
    key = base64.urlsafe_b64decode(vapid_key[1] + "=" * (-len(vapid_key[1]) % 4))
    assert calls[0] == {"userVisibleOnly": True, "key": base64.b64encode(key).decode()}
    assert calls[1]["error"].startswith("AbortError: Registration failed"), calls
    close(context, problems)
