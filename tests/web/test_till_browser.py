"""The cashier's page /till in a real headless Chromium, against the app served over HTTP.

Playwright's auto-waiting assertions (expect(...).to_have_text) do all the waiting: no sleeps.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
from playwright.sync_api import Page, Route, expect

from app.roles import Role

pytestmark = pytest.mark.browser

CASHIER = "cashier@example.com"
TOKEN_KEY = "pointcard.till.token"  # the sessionStorage key till.js keeps the token under


@pytest.fixture
def page(browser, live_server):
    """A phone-sized page; fails the test on a script error, a missing asset or a request off the server."""
    context = browser.new_context(
        base_url=live_server, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(5_000)
    page = context.new_page()
    script_errors, foreign_requests, broken_assets = [], [], []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith((live_server + "/", "data:")) else foreign_requests.append(request.url)
        ),
    )
    page.on(
        "response",
        lambda response: (
            broken_assets.append(response.url) if response.status >= 400 and "/api/" not in response.url else None
        ),
    )
    yield page
    context.close()
    assert script_errors == []
    assert foreign_requests == []
    assert broken_assets == []


def log_in(page: Page, world, password: str | None = None) -> None:
    page.goto("/till")
    page.get_by_label("E-mail").fill(CASHIER)
    page.get_by_label("Password").fill(password or world.passwords[CASHIER])
    page.locator("#login").click()
    expect(page.locator("#barcode")).to_be_visible()
    expect(page.locator("#currency")).to_have_text("USD")  # GET /program answered


def look_up(page: Page, barcode: str) -> None:
    page.get_by_label("Card barcode").fill(barcode)
    page.locator("#lookup").click()


def reward(page: Page, name: str):
    return page.get_by_test_id("reward").filter(has_text=name).get_by_role("button")


def test_cashier_looks_up_a_card_and_adds_a_purchase(page, world):
    card = world.enroll("Ada Lovelace")
    purchases = []
    page.on("request", lambda r: purchases.append(r) if r.url.endswith("/api/v1/pos/purchases") else None)

    log_in(page, world)
    if not page.evaluate("'BarcodeDetector' in window"):
        expect(page.locator("#scan")).to_be_hidden()  # no camera scanning here: typing only
    look_up(page, card["barcode"])

    expect(page.locator("#first-name")).to_have_text("Ada")
    expect(page.locator("#balance")).to_have_text("50")
    expect(page.locator("#member-number")).to_have_text(card["member_number"])
    expect(page.locator("#tier")).to_have_text("Bronze")
    expect(page.locator("#next-tier")).to_contain_text("to Silver")
    expect(reward(page, "Free drip coffee")).to_be_disabled()  # 300 points, the card has 50

    page.get_by_label("Purchase amount").fill("12.50")
    page.locator("#add-purchase").click()

    expect(page.locator("#earned")).to_have_text("+125 points")
    expect(page.locator("#balance")).to_have_text("175")
    expect(page.locator("#amount")).to_have_value("")
    expect(page.get_by_role("alert")).to_be_hidden()
    assert world.balance(card["customer_id"]) == 175

    [sent] = purchases
    assert sent.post_data_json == {"barcode": card["barcode"], "amount": "12.50", "currency": "USD"}
    uuid.UUID(sent.headers["idempotency-key"])  # a UUID per sale


def test_errors_show_the_problem_detail(page, world):
    alert = page.get_by_role("alert")

    log_in_page = page.locator("#login-view")
    page.goto("/till")
    page.get_by_label("E-mail").fill(CASHIER)
    page.get_by_label("Password").fill("not the password")
    page.locator("#login").click()
    expect(alert).to_have_text("The e-mail or password is wrong, or the account is disabled.")
    expect(log_in_page).to_be_visible()
    expect(page.locator("#till-view")).to_be_hidden()

    log_in(page, world)
    expect(alert).to_be_hidden()
    page.get_by_label("Card barcode").fill("NOT-A-CARD")
    page.get_by_label("Card barcode").press("Enter")  # what a USB scanner does after typing
    expect(alert).to_have_text("No active card has this barcode.")
    expect(page.locator("#card")).to_be_hidden()

    # A 401 from any call (here an expired token found on reload) goes back to the login form.
    expired = world.token(Role.cashier, lifetime=timedelta(minutes=-5))
    page.evaluate(f"sessionStorage.setItem({json.dumps(TOKEN_KEY)}, {json.dumps(expired)})")
    page.reload()
    expect(alert).to_have_text("The access token has expired; ask for a new one.")
    expect(log_in_page).to_be_visible()
    expect(page.locator("#logout")).to_be_hidden()
    assert page.evaluate(f"sessionStorage.getItem({json.dumps(TOKEN_KEY)})") is None


def test_a_purchase_whose_answer_is_lost_is_retried_with_the_same_key(page, world):
    card = world.enroll("Ada Lovelace")
    keys = []

    def lose_the_first_answer(route: Route) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            route.fetch()  # the server records the purchase...
            route.abort("connectionreset")  # ...but the till never hears back
        else:
            route.continue_()

    page.route("**/api/v1/pos/purchases", lose_the_first_answer)
    log_in(page, world)
    look_up(page, card["barcode"])
    page.get_by_label("Purchase amount").fill("12.50")
    page.locator("#add-purchase").click()

    expect(page.get_by_role("alert")).to_contain_text("may or may not have been recorded")
    expect(page.locator("#balance")).to_have_text("50")
    expect(page.locator("#amount")).to_have_attribute("readonly", "")  # the retry must be the same sale
    assert world.balance(card["customer_id"]) == 175

    page.locator("#add-purchase").click()
    expect(page.locator("#earned")).to_have_text("+125 points")
    expect(page.locator("#balance")).to_have_text("175")
    assert keys[1] == keys[0]
    assert world.balance(card["customer_id"]) == 175  # counted once

    page.get_by_label("Purchase amount").fill("1.00")  # the next sale gets a key of its own
    page.locator("#add-purchase").click()
    expect(page.locator("#balance")).to_have_text("185")
    assert len(keys) == 3 and keys[2] != keys[0]


CAMERA_STUB = """
(() => {
  const barcode = %s;
  window.__camera = {stopped: false, constraints: null, formats: null};
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    window.__camera.constraints = constraints;
    const canvas = document.createElement('canvas');
    canvas.width = 64; canvas.height = 48;
    const paint = () => canvas.getContext('2d').fillRect(0, 0, 64, 48);
    paint();
    const stream = canvas.captureStream();
    const timer = setInterval(paint, 40);
    for (const track of stream.getTracks()) {
      const stop = track.stop.bind(track);
      track.stop = () => { window.__camera.stopped = true; clearInterval(timer); stop(); };
    }
    return stream;
  };
  window.BarcodeDetector = class {
    static async getSupportedFormats() { return ['ean_13', 'code_128', 'qr_code']; }
    constructor(options) { window.__camera.formats = options.formats; }
    async detect() { return [{format: 'qr_code', rawValue: barcode}]; }
  };
})();
"""


def test_a_card_scanned_with_the_camera_redeems_a_reward_for_a_code(page, world):
    card = world.enroll("Grace Hopper")
    assert world.purchase(card["barcode"], "30.00").status_code == 201  # 50 + 300 = 350
    page.add_init_script(CAMERA_STUB % json.dumps(card["barcode"]))  # a camera that sees the card
    log_in(page, world)

    page.get_by_role("button", name="Scan with camera").click()

    expect(page.locator("#first-name")).to_have_text("Grace")
    expect(page.locator("#barcode")).to_have_value(card["barcode"])
    expect(page.locator("#camera")).to_be_hidden()
    camera = page.evaluate("window.__camera")
    assert camera["stopped"] is True  # the camera is off after the first hit
    assert camera["constraints"]["video"]["facingMode"] == "environment"
    assert camera["formats"] == ["qr_code", "code_128"]

    expect(page.locator("#balance")).to_have_text("350")
    expect(reward(page, "$5 off")).to_be_disabled()  # 500 points
    reward(page, "Free drip coffee").click()

    expect(page.locator("#redemption-code")).to_have_text(re.compile(r"^\w{4}-\w{4}-\w{4}$"))
    expect(page.locator("#redemption-reward")).to_have_text("Free drip coffee")
    expect(page.locator("#balance")).to_have_text("50")
    expect(reward(page, "Free drip coffee")).to_be_disabled()  # the card was read again: 50 < 300
    assert world.balance(card["customer_id"]) == 50
