"""Google Wallet over HTTP: the save link, Google's callbacks, and the program's logo.

Not under /api/v1: customers' browsers and Google call these, not API clients.
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, abort, jsonify, redirect, send_from_directory

from app.api import parse_body, request_transaction
from app.extensions import current_services
from app.loyalty.service import card_by_access_token
from app.wallet.google import save_link as links
from app.wallet.google import service
from app.wallet.google.callbacks import verify_callback
from app.wallet.google.credentials import NotConfigured
from app.wallet.google.schemas import CallbackRequest
from app.wallet.google.wallet import GoogleWallet

bp = Blueprint("google_wallet", __name__)
log = logging.getLogger("pointcard.google_wallet")

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_IMAGE = re.compile(r"^[A-Za-z0-9_-]+\.(png|jpg|jpeg)$")


def _configured_wallet() -> GoogleWallet:
    wallet = current_services().google_wallet
    try:
        _ = (wallet.issuer_id, wallet.account)  # loaded now, or the answer says what is missing
    except NotConfigured as exc:
        log.error("Google Wallet is not set up: %s", exc)  # the reason names files: for the log only
        raise links.GoogleWalletUnavailable("Google Wallet is not set up on this server.") from exc
    return wallet


@bp.get("/wallet/google/<card_token>")
def save_link(card_token: str):
    """Send the customer to Google's "save to wallet" page for their card."""
    wallet = _configured_wallet()
    with request_transaction() as session:
        card = card_by_access_token(session=session, access_token=card_token)
        link = links.plan_save_link(session=session, card=card, wallet=wallet)
    if link.needs_push:
        # No transaction is open while Google is called, so a slow Google holds up no one
        # (on SQLite any open transaction would hold the till's writes).
        class_response = links.push_save_link(link=link, wallet=wallet)
        with request_transaction() as session:
            links.record_save_link_push(session=session, link=link, class_response=class_response)
    response = redirect(link.url, code=302)
    # Signed afresh on every click; and the card's secret is in this URL.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.post("/wallet/google/callback")
def callback():
    """Google says a card was saved to or deleted from a wallet (signed ECv2SigningOnly)."""
    request_body = parse_body(CallbackRequest)
    wallet = _configured_wallet()
    message = verify_callback(
        request_body,
        sender_ids=wallet.settings.callback_sender_ids,
        recipient_id=wallet.issuer_id,
        keys=wallet.root_keys,
    )
    with request_transaction() as session:
        outcome = service.record_callback(session=session, message=message)
    # 200 whatever the outcome: Google would only send a duplicate or expired message again.
    return jsonify(status=outcome)


@bp.get("/wallet/google/assets/<program_slug>/<filename>")
def asset(program_slug: str, filename: str):
    """Images the class names (the program logo), from the program's template folder."""
    if not _SLUG.match(program_slug) or not _IMAGE.match(filename):
        abort(404)
    templates_dir = current_services().google_wallet.settings.templates_dir
    for folder in (templates_dir / program_slug / "google", templates_dir / "default" / "google"):
        if (folder / filename).is_file():
            return send_from_directory(folder, filename, max_age=3600)
    abort(404)
