from flask import Blueprint, render_template

from app.extensions import get_session
from app.loyalty.api import card_links
from app.loyalty.service import card_by_access_token

# Not /static: the app's own static route (registered even without an app/static folder) owns
# /static/<path> and would answer 404 for these files.
bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/web/static")

# The till keeps a staff token in sessionStorage: no script, style or frame from elsewhere.
PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@bp.after_request
def _security_headers(response):
    for name, value in PAGE_SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


@bp.get("/till")
def till():
    """The cashier's page: log in, scan or type a barcode, earn and redeem."""
    return render_template("till.html")


@bp.get("/card/<card_token>")
def card(card_token: str):
    """The customer's card page: balance, tier and the wallet buttons (the URL is the secret)."""
    found = card_by_access_token(session=get_session(), access_token=card_token)
    customer = found.customer
    return render_template("card.html", card=found, customer=customer, program=customer.program,
                           tier=customer.tier, links=card_links(found))
