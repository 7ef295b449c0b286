"""The marketer dashboard /dashboard in a real headless Chromium, against the app served over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.campaigns.config import CampaignSettings
from app.campaigns.models import Campaign
from app.campaigns.service import score_program
from app.db import utcnow
from app.loyalty.models import Program

pytestmark = pytest.mark.browser

MARKETER = "marketer@example.com"


@pytest.fixture
def page(browser, live_server):
    """A desktop page; fails the test on a script error, a CSP violation, a missing asset or a foreign request."""
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(5_000)
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    # The API's refusals (a 422 while a rule is half typed) are expected; anything else is not.
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and "/api/" not in message.location.get("url", "")
            else None
        ),
    )
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith((live_server + "/", "data:"))
            else problems.append(f"foreign request: {request.url}")
        ),
    )
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status}: {response.url}")
            if response.status >= 400 and "/api/" not in response.url
            else None
        ),
    )
    yield page
    context.close()
    assert problems == []


def log_in(page, world, email: str = MARKETER) -> None:
    page.goto("/dashboard")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(world.passwords[email])
    page.locator("#login").click()


def test_a_marketer_creates_a_campaign_sees_its_count_and_finds_it_listed(page, world):
    for name in ("Ada Lovelace", "Bob Babbage", "Cy Clerk"):
        card = world.enroll(name)  # 50 points each for signing up
    assert world.purchase(card["barcode"], "12.50").status_code == 201  # Cy: 175 points
    with world.database.transaction() as session:
        score_program(
            session=session, program=session.scalar(select(Program)), now=utcnow(), settings=CampaignSettings()
        )

    log_in(page, world)
    expect(page.get_by_test_id("campaigns")).to_be_visible()
    expect(page.locator("#no-campaigns")).to_be_visible()
    expect(page.locator("#calendar .day")).to_have_count(42)

    page.get_by_role("button", name="New campaign").click()
    count = page.get_by_test_id("segment-count")
    expect(count).to_have_text("3 customers")  # the first condition: points >= 0
    rule = page.get_by_test_id("rules").locator("li").first
    rule.get_by_label("Value").fill("100")
    expect(count).to_have_text("1 customer")
    rule.get_by_label("Field").select_option("tier")
    rule.get_by_label("Value").fill("Platinum")
    expect(page.locator("#segment-count-note")).to_contain_text("unknown tier 'Platinum'")
    rule.get_by_label("Field").select_option("points")
    rule.get_by_label("Value").fill("100")
    expect(count).to_have_text("1 customer")

    page.get_by_label("Name", exact=True).fill("Big spenders")
    page.get_by_label("SMS", exact=True).check()
    page.get_by_label("SMS text").fill("{{ first_name }}, {{ bonus_points }} points are waiting at {{ program }}.")
    page.get_by_label("Bonus points with the message").fill("50")
    send_at = (utcnow() + timedelta(days=2)).astimezone().strftime("%Y-%m-%dT%H:%M")
    page.get_by_label("Send at (your local time)").fill(send_at)
    page.get_by_test_id("create-campaign").click()

    expect(page.get_by_test_id("notice")).to_contain_text("'Big spenders' is scheduled for")
    row = page.get_by_test_id("campaigns").locator("tbody tr").filter(has_text="Big spenders")
    expect(row).to_contain_text("scheduled")
    expect(page.get_by_test_id("calendar")).to_contain_text("Big spenders")
    with world.database.transaction() as session:
        campaign = session.scalar(select(Campaign))
        assert (campaign.name, campaign.state, campaign.channels, campaign.bonus_points) == (
            "Big spenders",
            "scheduled",
            ["push", "sms"],
            50,
        )
        assert campaign.segment.rules == {"all": [{"field": "points", "op": "gte", "value": 100}]}

    row.get_by_role("button", name="Pause").click()
    expect(row).to_contain_text("paused")
    row.get_by_role("button", name="Results").click()
    expect(page.get_by_test_id("results")).to_contain_text("Results: Big spenders")
    expect(page.locator("#results-table tbody tr")).to_have_count(1)

    page.get_by_role("button", name="Customers").click()
    expect(page.locator("#model-note")).to_contain_text("No P(alive) model tonight")
    assert page.evaluate("Chart.getChart('status-chart').data.datasets.map(d => d.data.at(-1))") == [0, 0, 3, 0, 0]
    assert page.evaluate("Chart.getChart('enrollment-chart').data.datasets[0].data") == [3]


def test_a_cashier_cannot_use_the_dashboard(page, world):
    log_in(page, world, "cashier@example.com")
    expect(page.get_by_role("alert")).to_have_text("The dashboard is for marketers and admins.")
    expect(page.locator("#app-view")).to_be_hidden()
