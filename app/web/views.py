from flask import Blueprint, make_response, render_template
from sqlalchemy import select

from app.db import utcnow
from app.extensions import get_session, get_settings
from app.loyalty.api import card_links
from app.loyalty.models import LedgerEntry
from app.loyalty.service import available_rewards, card_by_access_token, current_consents
from app.loyalty.tiers import next_tier, qualifying_points
from app.web.i18n import pick_language, translator

# Not /static: the app's own static route (registered even without an app/static folder) owns
# /static/<path> and would answer 404 for these files.
bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/web/static")

# The till keeps a staff token in sessionStorage: no script, style or frame from elsewhere.
PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def secure_pages(blueprint: Blueprint) -> Blueprint:
    """Send the page security headers on every response of the blueprint's pages."""

    @blueprint.after_request
    def _security_headers(response):
        for name, value in PAGE_SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return blueprint


secure_pages(bp)


@bp.get("/till")
def till():
    """The cashier's page: log in, scan or type a barcode, earn and redeem."""
    return render_template("till.html")


@bp.get("/card/<card_token>")
def card(card_token: str):
    """The customer's card page: balance, tier, history, rewards, wallets, offers and consents
    (the URL is the secret)."""
    session = get_session()
    found = card_by_access_token(session=session, access_token=card_token)
    customer, program, now = found.customer, found.customer.program, utcnow()
    language = pick_language()
    response = make_response(render_template(
        "card.html", card=found, customer=customer, program=program, tier=customer.tier, links=card_links(found),
        progress=_tier_progress(session, customer, now), history=_history(session, customer.id),
        rewards=available_rewards(session=session, program=program, now=now),
        consents={c.value: row.granted for c, row in current_consents(session=session, customer_id=customer.id).items()},
        share_url=_share_url(customer.referral_code), lang=language, t=translator(language)))
    response.headers["Vary"] = "Accept-Language"
    response.headers["Cache-Control"] = "no-store"  # a balance and a secret URL: never cached
    return response


def _share_url(referral_code: str) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/?ref={referral_code}"


def _tier_progress(session, customer, now) -> dict | None:
    following = next_tier(customer.program, customer.tier)
    if following is None:
        return None
    points = qualifying_points(session=session, customer=customer, program=customer.program, now=now)
    percent = min(100, round(100 * points / following.threshold)) if following.threshold else 100
    return {"tier": following.name, "missing": max(0, following.threshold - points), "percent": percent}


def _history(session, customer_id: int) -> list[LedgerEntry]:
    return list(session.scalars(select(LedgerEntry).where(LedgerEntry.customer_id == customer_id)
                                .order_by(LedgerEntry.id.desc()).limit(20)))
