"""Places over HTTP: stores (where, when open), geofenced offers, and the customer's location pings."""

from __future__ import annotations

from flask import Blueprint

from app.api import current_customer_id, endpoint
from app.crud import get_or_404
from app.extensions import get_session, get_settings
from app.geo import service, stores
from app.geo.geocoding import geocoder_from
from app.geo.models import GeoOffer
from app.geo.schemas import (
    GeoOfferCreate,
    GeoOfferRead,
    LocationPingCreate,
    LocationPingResult,
    MatchedOffer,
    StoreCreate,
    StoreRead,
    StoreUpdate,
)
from app.loyalty.models import Store
from app.loyalty.service import get_program
from app.roles import Role

bp = Blueprint("geo", __name__, url_prefix="/api/v1")

STAFF_WRITERS = [Role.admin, Role.marketer]
ALL_STAFF = [Role.admin, Role.marketer, Role.cashier]


@bp.post("/me/location")
@endpoint(roles=[Role.customer], body=LocationPingCreate, response=LocationPingResult, tags=["me"], errors=[403, 429])
def post_location(body: LocationPingCreate):
    """Where the card page's phone is now: stored briefly, and any offer it is inside gets queued.

    The calling customer only, and only with their location opt-in on record (403 without it). One
    position per `ping_min_interval_seconds` (a server setting, 20 s by default) is enough: a sooner
    one is a 429 saying when to send the next. Positions are deleted after `ping_retention_hours`
    (24 by default). Each matching offer is sent through the outbox at most once per its cooldown;
    the answer lists them, with the bonus points or reward code an offer gave.
    """
    ping, deliveries = service.record_ping(
        session=get_session(),
        customer_id=current_customer_id(),
        latitude=body.latitude,
        longitude=body.longitude,
        accuracy_m=body.accuracy,
        settings=get_settings().geo,
    )
    offers = [
        MatchedOffer(
            id=d.offer.id,
            title=d.offer.title,
            body=d.offer.body,
            store_id=d.store_id,
            bonus_points=d.bonus_entry.points if d.bonus_entry else None,
            reward_code=d.redemption.code if d.redemption else None,
        )
        for d in deliveries
    ]
    return LocationPingResult(recorded_at=ping.recorded_at, offers=offers)


@bp.get("/geo-offers")
@endpoint(roles=STAFF_WRITERS, response=list[GeoOfferRead], tags=["geo-offers"])
def list_offers():
    """Every geofenced offer of the program, inactive ones included (admins and marketers).

    Each offer says where it fences (its stores, or a point), when it runs (dates, weekdays and hours
    in its time zone), what it says on which channels and what it gives.
    """
    offers = service.list_offers(session=get_session(), program_id=_program_id())
    return [service.offer_read(offer) for offer in offers]


@bp.post("/geo-offers")
@endpoint(
    roles=STAFF_WRITERS, body=GeoOfferCreate, response=GeoOfferRead, status=201, tags=["geo-offers"], errors=[404]
)
def create_offer(body: GeoOfferCreate):
    """A new offer fenced around stores or a point.

    Admins and marketers. Give `store_ids` (open stores of the program; 404 for an unknown one, 422 for
    a closed one) or a `latitude`/`longitude`, not both; the fence is `radius_m` around each. An
    unknown `reward_id` is a 404. The cards' wallet passes are told, since they list nearby offers.
    """
    offer = service.save_offer(session=get_session(), program_id=_program_id(), body=body, settings=get_settings().geo)
    return service.offer_read(offer)


@bp.get("/geo-offers/<int:offer_id>")
@endpoint(roles=STAFF_WRITERS, response=GeoOfferRead, tags=["geo-offers"], errors=[404])
def get_offer(offer_id: int):
    """One geofenced offer of the program (admins and marketers).

    404 when no offer of this program has the id.
    """
    return service.offer_read(_offer(offer_id))


@bp.put("/geo-offers/<int:offer_id>")
@endpoint(roles=STAFF_WRITERS, body=GeoOfferCreate, response=GeoOfferRead, tags=["geo-offers"], errors=[404])
def replace_offer(offer_id: int, body: GeoOfferCreate):
    """Replace an offer's whole definition (its fences are rebuilt).

    Admins and marketers. A PUT: every field takes the value sent or its default, with the same rules
    as creating one. Deliveries already made stay, and the cooldown still counts from them.
    """
    offer = service.save_offer(
        session=get_session(), program_id=_program_id(), body=body, offer=_offer(offer_id), settings=get_settings().geo
    )
    return service.offer_read(offer)


@bp.delete("/geo-offers/<int:offer_id>")
@endpoint(roles=STAFF_WRITERS, tags=["geo-offers"], errors=[404])
def delete_offer(offer_id: int):
    """Delete an offer; what it already sent stays in the outbox.

    Admins and marketers. Its fences go at once, so no later position matches it; to stop an offer
    for a while instead, set `active` to false with a PUT.
    """
    service.delete_offer(session=get_session(), offer=_offer(offer_id))


@bp.get("/stores")
@endpoint(roles=ALL_STAFF, response=list[StoreRead], tags=["stores"])
def list_stores():
    """Every store of the program, closed ones included.

    All staff. A closed store has `active: false`; it is kept because purchases point at it.
    """
    return stores.list_stores(session=get_session(), program_id=_program_id())


@bp.post("/stores")
@endpoint(roles=[Role.admin], body=StoreCreate, response=StoreRead, status=201, tags=["stores"], errors=[503])
def create_store(body: StoreCreate):
    """A new store; without coordinates its address is geocoded (when a geocoder is configured).

    Admins only. Give `latitude` and `longitude`, or an address on a server with a geocoder: without
    either it is a 422 saying which, as is an address the geocoder cannot find. A geocoder that
    fails or cannot be reached is a 503, and nothing is saved. Opening hours are in the store's time
    zone; null means not known, and the store counts as open.
    """
    return stores.create_store(
        session=get_session(), program_id=_program_id(), body=body, geocoder=geocoder_from(get_settings().geo)
    )


@bp.get("/stores/<int:store_id>")
@endpoint(roles=ALL_STAFF, response=StoreRead, tags=["stores"], errors=[404])
def get_store(store_id: int):
    """One store of the program, open or closed (all staff).

    404 when no store of this program has the id.
    """
    return _store(store_id)


@bp.patch("/stores/<int:store_id>")
@endpoint(roles=[Role.admin], body=StoreUpdate, response=StoreRead, tags=["stores"], errors=[404])
def update_store(store_id: int, body: StoreUpdate):
    """Change a store; moving or closing it moves or drops its offers' fences.

    Admins only. Only the fields sent change; a field that needs a value cannot be set to null
    (422). Reopening a store (`active: true`) puts its offers' fences back.
    """
    return stores.update_store(session=get_session(), store=_store(store_id), body=body, settings=get_settings().geo)


@bp.delete("/stores/<int:store_id>")
@endpoint(roles=[Role.admin], tags=["stores"], errors=[404])
def delete_store(store_id: int):
    """Retire a store (purchases point at it, so it is closed, never deleted).

    Admins only. The same as a PATCH with `active: false`: the store stays in the list as closed,
    its offers' fences are dropped, and a PATCH with `active: true` reopens it.
    """
    stores.update_store(
        session=get_session(), store=_store(store_id), body=StoreUpdate(active=False), settings=get_settings().geo
    )


def _store(store_id: int) -> Store:
    return get_or_404(get_session(), Store, store_id, program_id=_program_id())


def _program_id() -> int:
    return get_program(session=get_session()).id


def _offer(offer_id: int) -> GeoOffer:
    return get_or_404(get_session(), GeoOffer, offer_id, program_id=_program_id())
