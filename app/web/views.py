import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from flask_limiter import RateLimitExceeded
from pydantic import ValidationError
from sqlalchemy import select

from app.api import request_transaction
from app.db import utcnow
from app.errors import Problem, problem_response, validation_errors
from app.extensions import get_session, get_settings, limiter
from app.loyalty.api import card_links
from app.loyalty.models import Customer, LedgerEntry
from app.loyalty.schemas import EnrollRequest
from app.loyalty.service import available_rewards, card_by_access_token, current_consents, enroll_customer, get_program
from app.loyalty.tiers import next_tier, qualifying_points
from app.web.i18n import pick_language, translator

# Not /static: the app's own static route (registered even without an app/static folder) owns
# /static/<path> and would answer 404 for these files.
STATIC = Path(__file__).parent / "static"
bp = Blueprint("web", __name__, template_folder="templates", static_folder=STATIC, static_url_path="/web/static")

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
    response = make_response(
        render_template(
            "card.html",
            card=found,
            customer=customer,
            program=program,
            tier=customer.tier,
            links=card_links(found),
            progress=_tier_progress(session, customer, now),
            history=_history(session, customer.id),
            rewards=available_rewards(session=session, program=program, now=now),
            consents={
                c.value: row.granted for c, row in current_consents(session=session, customer_id=customer.id).items()
            },
            share_url=_share_url(customer.referral_code),
            badges=wallet_badges(language),
            lang=language,
            t=translator(language),
        )
    )
    response.headers["Vary"] = "Accept-Language"
    response.headers["Cache-Control"] = "no-store"  # a balance and a secret URL: never cached
    return response


def wallet_badges(language: str, folder: Path | None = None) -> dict[str, str | None]:
    """The official "Add to ... Wallet" artwork in the page's language when its file has been put in
    static/badges (see the README there: it cannot be fetched offline), else None for the look-alike."""
    folder = folder or STATIC / "badges"
    names = {wallet: f"{wallet}-wallet-{language}.svg" for wallet in ("apple", "google")}
    return {wallet: f"badges/{name}" if (folder / name).is_file() else None for wallet, name in names.items()}


def _share_url(referral_code: str) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/join?ref={referral_code}"


def _tier_progress(session, customer, now) -> dict | None:
    following = next_tier(customer.program, customer.tier)
    if following is None:
        return None
    points = qualifying_points(session=session, customer=customer, program=customer.program, now=now)
    percent = min(100, round(100 * points / following.threshold)) if following.threshold else 100
    return {"tier": following.name, "missing": max(0, following.threshold - points), "percent": percent}


def _history(session, customer_id: int) -> list[LedgerEntry]:
    return list(
        session.scalars(
            select(LedgerEntry).where(LedgerEntry.customer_id == customer_id).order_by(LedgerEntry.id.desc()).limit(20)
        )
    )


# --- the public sign-up page ---------------------------------------------------------------

# Referral codes are codes.readable_code(8); the API accepts 4 to 16 characters.
REFERRAL_CODE = re.compile(r"^[A-Za-z0-9]{4,16}$")
CONSENT_CHANNELS = ("email", "sms", "push", "voice")
SIGN_UP_FIELDS = ("first_name", "last_name", "email", "phone", "referral_code")


@bp.get("/")
def home():
    """The service's front door is the sign-up page; a shared link's ?ref= (and ?lang=) go along."""
    kept: dict[str, Any] = {name: request.args[name] for name in ("ref", "lang") if name in request.args}
    return redirect(url_for("web.join", **kept), code=302)


@bp.get("/join")
def join():
    """Sign up for a card: the form posts to /api/v1/enroll from join.js, or here without scripts."""
    code = request.args.get("ref", "").strip()
    return _join_page(values={"referral_code": code.upper() if _known_referral(code) else ""}, asked_code=code)


def _too_many_sign_ups(_limit):
    """The plain form's rate limit answers with the page and a sentence, not problem+json."""
    values = {name: request.form.get(name, "") for name in SIGN_UP_FIELDS}
    return _join_page(values=values, errors=[translator(pick_language())("too_many")], status=429)


@bp.errorhandler(RateLimitExceeded)
def _rate_limited(exc: RateLimitExceeded):
    # The app's handler answers every HTTP error in problem+json and would drop the page that
    # on_breach put in the exception; a limit without a page of its own answers as it would.
    if exc.response is not None:
        return exc.response
    return problem_response(429, slug="too-many-requests", title="Too Many Requests", detail=exc.description)


@bp.post("/join")
@limiter.limit(lambda: get_settings().enroll_rate_limit, on_breach=_too_many_sign_ups)
def join_without_script():
    """The same sign-up as POST /api/v1/enroll, for a browser with scripts off: a plain form post."""
    form, t = request.form, translator(pick_language())
    values = {name: form.get(name, "").strip() for name in SIGN_UP_FIELDS}
    if not (values["email"] or values["phone"]):
        return _join_page(values=values, errors=[t("contact_hint")], status=422)
    try:
        body = EnrollRequest.model_validate(
            {
                "first_name": values["first_name"] or None,
                "last_name": values["last_name"],
                "email": values["email"] or None,
                "phone": values["phone"] or None,
                "referral_code": values["referral_code"] or None,
                "consents": {channel: f"consent_{channel}" in form for channel in CONSENT_CHANNELS},
                # The text this page showed beside the boxes, in the language it was shown in.
                "consent_text": t("join_consent", program=get_program(session=get_session()).name),
            }
        )
        with request_transaction() as session:
            customer = _enroll(session, body)
            card_url = card_links(customer.card)["card_url"]
    except ValidationError as exc:
        return _join_page(
            values=values, errors=[f"{e['field']}: {e['message']}" for e in validation_errors(exc)], status=422
        )
    except Problem as problem:
        return _join_page(values=values, errors=[problem.detail], status=problem.status)
    return redirect(card_url, code=303)


def _enroll(session, body: EnrollRequest) -> Customer:
    # The same call as the enrol API: the service is the one place that enrols.
    return enroll_customer(
        session=session,
        program=get_program(session=session),
        first_name=body.names[0],
        last_name=body.names[1],
        email=body.email,
        phone=body.phone,
        consents=body.consents.by_channel(),
        consent_source="enrolment",
        disclosure=body.consent_text,
        ip_address=request.remote_addr,
        referral_code=body.referral_code,
    )


def _known_referral(code: str) -> bool:
    if not REFERRAL_CODE.match(code):
        return False
    program = get_program(session=get_session())
    return (
        get_session().scalar(
            select(Customer.id).where(Customer.program_id == program.id, Customer.referral_code == code.upper())
        )
        is not None
    )


def _join_page(*, values: dict, asked_code: str = "", errors: Sequence[str] = (), status: int = 200):
    language = pick_language()
    program = get_program(session=get_session())
    referral = None
    if asked_code:
        referral = "known" if values.get("referral_code") else "unknown"
    response = make_response(
        render_template(
            "join.html",
            program=program,
            values=values,
            referral=referral,
            asked_code=asked_code[:32],
            errors=list(errors),
            channels=CONSENT_CHANNELS,
            lang=language,
            t=translator(language),
        ),
        status,
    )
    response.headers["Vary"] = "Accept-Language"
    response.headers["Cache-Control"] = "no-store"  # it may echo what was typed
    return response
