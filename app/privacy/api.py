"""HTTP API of the privacy package: the customer's own data, out or erased."""

from __future__ import annotations

from flask import Blueprint

from app.api import current_customer_id, endpoint
from app.extensions import get_session
from app.privacy import service
from app.privacy.schemas import DataExport
from app.roles import Role

bp = Blueprint("privacy", __name__, url_prefix="/api/v1")


@bp.get("/me/export")
@endpoint(roles=[Role.customer], response=DataExport, tags=["me"])
def export_me():
    """Download everything stored about the calling customer (JSON).

    For a customer token. Profile, consents, ledger, purchases, redemptions, referrals, messages,
    recent locations, offers received, push subscriptions, wallet passes and marketing data (tags,
    scores, campaigns), and nothing about anyone else: a referral says that it happened and when,
    not who the other customer is.
    """
    return service.export_customer(session=get_session(), customer_id=current_customer_id())


@bp.delete("/me")
@endpoint(roles=[Role.customer], tags=["me"])
def erase_me():
    """Forget the calling customer: personal data erased, card closed, pass voided.

    For a customer token. Name, e-mail, phone, locations, push subscriptions, tags, scores and the
    text of waiting messages go; consents stay as the record of what was agreed, without the address
    they came from. The points history stays without a name, so programme totals do not change. The
    card's tokens stop working at once. Calling it again changes nothing.
    """
    service.erase_customer(session=get_session(), customer_id=current_customer_id())
