"""The API reference /docs in a real headless Chromium: Redoc renders the whole document, with
nothing loaded from elsewhere and nothing refused by the page's Content-Security-Policy."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# Installed before the page's own scripts: every refusal of the policy is kept for the test.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def page(browser, live_server):
    """A desktop page; fails the test on a console error, a script error, a failed or foreign request."""
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(5_000)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("console", lambda message: problems.append(f"console: {message.text}") if message.type == "error" else None)
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith((live_server + "/", "data:", "blob:"))
            else problems.append(f"foreign request: {request.url}")
        ),
    )
    page.on(
        "response",
        lambda response: problems.append(f"{response.status}: {response.url}") if response.status >= 400 else None,
    )
    yield page
    context.close()
    assert problems == []


def test_the_reference_shows_every_operation_and_searches_them(page, app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    operation_ids = [op["operationId"] for operations in document["paths"].values() for op in operations.values()]

    response = page.goto("/docs")
    assert response.status == 200
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]
    # Redoc parses and lays out about 90 operations first: seconds on a busy machine.
    expect(page.locator("h2", has_text="Earn points on a purchase.")).to_be_visible(timeout=30_000)
    expect(page.locator("[id*='/operation/']")).to_have_count(len(operation_ids))
    expect(page.get_by_text("Upload the audio a voicemail drop plays").first).to_be_attached()

    # The search index is built in a worker (from a blob: URL, which the policy allows).
    page.get_by_placeholder("Search...").fill("refund")
    expect(page.get_by_role("menuitem").filter(has_text="Refund a purchase, wholly or partly")).to_be_visible()
    assert page.evaluate("window.__cspViolations") == []
