"""Offers, their fences, and matching a customer's position against them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.crud import get_or_404
from app.db import rowcount, utcnow
from app.errors import Forbidden, TooManyRequests, Unprocessable
from app.extensions import services_of
from app.geo import events, fences, hours
from app.geo.config import GeoSettings
from app.geo.models import GeoFence, GeoOffer, GeoOfferDelivery, GeoOfferStore, LocationPing
from app.geo.schemas import GeoOfferCreate, GeoOfferRead, OfferChannel
from app.loyalty.ledger import lock_customer
from app.loyalty.models import Channel, Customer, Reward, Store
from app.loyalty.service import current_consents
from app.loyalty.transactions import RewardUnavailable, grant_bonus, grant_reward
from app.messaging import outbox

log = logging.getLogger(__name__)


# --- offers ----------------------------------------------------------------------------------------


def offer_read(offer: GeoOffer) -> GeoOfferRead:
    store_ids = sorted(link.store_id for link in offer.stores)
    return GeoOfferRead.model_validate(
        {**{c.key: getattr(offer, c.key) for c in GeoOffer.__table__.columns}, "store_ids": store_ids}
    )


def list_offers(*, session: Session, program_id: int) -> list[GeoOffer]:
    return list(session.scalars(select(GeoOffer).where(GeoOffer.program_id == program_id).order_by(GeoOffer.id)))


def save_offer(
    *, session: Session, program_id: int, body: GeoOfferCreate, offer: GeoOffer | None = None, settings: GeoSettings
) -> GeoOffer:
    """Create or replace an offer; its prefilter rows are rebuilt and the cards told."""
    stores = _stores(session, program_id, body.store_ids)
    if body.reward_id is not None:
        get_or_404(session, Reward, body.reward_id, program_id=program_id)
    if body.radius_m > settings.max_radius_m:
        raise Unprocessable(f"A fence may be at most {settings.max_radius_m:g} m across its radius.")
    offer = offer or GeoOffer(program_id=program_id)
    for name, value in body.model_dump(exclude={"store_ids"}).items():
        setattr(offer, name, value)
    offer.stores = [GeoOfferStore(store_id=store.id) for store in stores]
    session.add(offer)
    session.flush()
    rebuild_fences(session=session, offer=offer, stores=stores, settings=settings)
    _announce(session, program_id)
    return offer


def delete_offer(*, session: Session, offer: GeoOffer) -> None:
    program_id = offer.program_id
    session.execute(delete(GeoFence).where(GeoFence.offer_id == offer.id))
    session.delete(offer)
    session.flush()
    _announce(session, program_id)


def _stores(session: Session, program_id: int, store_ids: list[int]) -> list[Store]:
    stores = [get_or_404(session, Store, store_id, program_id=program_id) for store_id in dict.fromkeys(store_ids)]
    inactive = [store.id for store in stores if not store.active]
    if inactive:
        raise Unprocessable(f"Stores {inactive} are closed; an offer cannot fence them.")
    return stores


def rebuild_fences(*, session: Session, offer: GeoOffer, stores: list[Store], settings: GeoSettings) -> None:
    session.execute(delete(GeoFence).where(GeoFence.offer_id == offer.id))
    # A store offer whose stores are all closed has no fence at all.
    centres: list[tuple[int | None, float, float, str]]
    if offer.stores:
        centres = [(store.id, store.latitude, store.longitude, store.timezone) for store in stores]
    else:
        assert offer.latitude is not None and offer.longitude is not None  # a point offer has its point
        centres = [(None, offer.latitude, offer.longitude, offer.timezone)]
    # Grown by the vaguest fix we match, so a fix whose uncertainty touches the fence is found.
    reach = offer.radius_m + settings.max_accuracy_m
    session.add_all(
        GeoFence(
            offer_id=offer.id,
            store_id=store_id,
            band=box.band,
            min_lat=box.min_lat,
            max_lat=box.max_lat,
            min_lon=box.min_lon,
            max_lon=box.max_lon,
            latitude=lat,
            longitude=lon,
            radius_m=offer.radius_m,
            timezone=zone,
        )
        for store_id, lat, lon, zone in centres
        for box in fences.boxes(lat, lon, reach)
    )
    session.flush()


def store_fences_changed(*, session: Session, store: Store, settings: GeoSettings) -> None:
    """A store moved, changed zone, closed or reopened: rebuild the fences of every offer around it."""
    offers = session.scalars(
        select(GeoOffer)
        .join(GeoOfferStore, GeoOfferStore.offer_id == GeoOffer.id)
        .where(GeoOfferStore.store_id == store.id)
        .order_by(GeoOffer.id)
    ).all()
    for offer in offers:
        open_stores = [
            link_store for link in offer.stores if (link_store := session.get_one(Store, link.store_id)).active
        ]
        rebuild_fences(session=session, offer=offer, stores=open_stores, settings=settings)
    _announce(session, store.program_id)


def _announce(session: Session, program_id: int) -> None:
    """Wallet passes show the active offers near their stores: tell every card to refresh."""
    events.offers_changed.send(session, program_id=program_id)


# --- windows ---------------------------------------------------------------------------------------


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def open_at(offer: GeoOffer, zone: str, now: datetime) -> bool:
    """Whether the offer runs at `now`: its dates, then its days and hours in the fence's zone."""
    if (offer.starts_at and now < offer.starts_at) or (offer.ends_at and now >= offer.ends_at):
        return False
    local = now.astimezone(ZoneInfo(zone))
    if offer.start_time is None:
        return not offer.days or local.isoweekday() in offer.days
    assert offer.end_time is not None  # the schema sets both times or neither
    start, end, clock = _clock(offer.start_time), _clock(offer.end_time), local.time()
    if start <= end:
        return (not offer.days or local.isoweekday() in offer.days) and start <= clock < end
    # Over midnight: the early hours belong to the day the window opened.
    if clock >= start:
        return not offer.days or local.isoweekday() in offer.days
    opened = (local - timedelta(days=1)).isoweekday()
    return clock < end and (not offer.days or opened in offer.days)


# --- matching --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    offer: GeoOffer
    store_id: int | None
    distance_m: float


def candidate_fences(*, session: Session, program_id: int, latitude: float, longitude: float) -> list[GeoFence]:
    """The SQL prefilter: fences whose box holds the point (an index seek on band, then longitude)."""
    return list(
        session.scalars(
            select(GeoFence)
            .join(GeoOffer, GeoOffer.id == GeoFence.offer_id)
            .where(
                GeoFence.band == fences.band_of(latitude),
                GeoFence.min_lon <= longitude,
                GeoFence.max_lon >= longitude,
                GeoFence.min_lat <= latitude,
                GeoFence.max_lat >= latitude,
                GeoOffer.program_id == program_id,
                GeoOffer.active.is_(True),
            )
        )
    )


def matching_offers(
    *,
    session: Session,
    program_id: int,
    latitude: float,
    longitude: float,
    accuracy_m: float,
    now: datetime,
    settings: GeoSettings,
) -> list[Match]:
    """Offers open now whose fence the fix may be inside; the nearest fence of each offer."""
    if accuracy_m > settings.max_accuracy_m:
        return []
    best: dict[int, Match] = {}
    for fence in candidate_fences(session=session, program_id=program_id, latitude=latitude, longitude=longitude):
        distance = fences.distance_m((fence.latitude, fence.longitude), (latitude, longitude))
        if distance - accuracy_m > fence.radius_m or not _speaks(session, fence, now):
            continue
        if fence.offer_id not in best or distance < best[fence.offer_id].distance_m:
            best[fence.offer_id] = Match(_offer(session, fence), fence.store_id, distance)
    return sorted(best.values(), key=lambda match: match.distance_m)


def _offer(session: Session, fence: GeoFence) -> GeoOffer:
    return session.get_one(GeoOffer, fence.offer_id)


def _speaks(session: Session, fence: GeoFence, now: datetime) -> bool:
    """The offer runs now, and (if it says so) the fence's store is open."""
    offer = _offer(session, fence)
    if not open_at(offer, fence.timezone, now):
        return False
    if not offer.only_while_open or fence.store_id is None:
        return True
    return hours.is_open(session.get_one(Store, fence.store_id).opening_hours, fence.timezone, now)


# --- pings -----------------------------------------------------------------------------------------


def record_ping(
    *,
    session: Session,
    customer_id: int,
    latitude: float,
    longitude: float,
    accuracy_m: float,
    settings: GeoSettings,
    now: datetime | None = None,
) -> tuple[LocationPing, list[GeoOfferDelivery]]:
    """Store a position the customer sent; queue the offers it earns (consent and cooldown) with their gifts."""
    now = now or utcnow()
    customer = lock_customer(session=session, customer_id=customer_id)  # serial pings: exact cooldowns
    consent = current_consents(session=session, customer_id=customer_id).get(Channel.location)
    if consent is None or not consent.granted:
        raise Forbidden("Location is used only with the customer's location opt-in; none is on record.")
    last = _last_ping(session, customer_id)
    _check_rate(last, now, settings)
    _note_move(session, customer_id, last, (latitude, longitude), settings)
    ping = LocationPing(
        customer_id=customer_id, latitude=latitude, longitude=longitude, accuracy_m=accuracy_m, recorded_at=now
    )
    session.add(ping)
    matches = [
        match
        for match in matching_offers(
            session=session,
            program_id=customer.program_id,
            latitude=latitude,
            longitude=longitude,
            accuracy_m=accuracy_m,
            now=now,
            settings=settings,
        )
        if not _cooling_down(session, match.offer, customer_id, now)
    ]
    deliveries = [_deliver(session, customer, match, now) for match in matches]
    session.flush()
    return ping, deliveries


def _last_ping(session: Session, customer_id: int) -> LocationPing | None:
    return session.scalar(
        select(LocationPing)
        .where(LocationPing.customer_id == customer_id)
        .order_by(LocationPing.recorded_at.desc())
        .limit(1)
    )


def _check_rate(last: LocationPing | None, now: datetime, settings: GeoSettings) -> None:
    since = now - timedelta(seconds=settings.ping_min_interval_seconds)
    if last is not None and last.recorded_at > since:
        wait = int((last.recorded_at - since).total_seconds()) + 1
        raise TooManyRequests(
            f"One position every {settings.ping_min_interval_seconds} s is enough; send the next in {wait} s."
        )


def _note_move(
    session: Session, customer_id: int, last: LocationPing | None, point: tuple[float, float], settings: GeoSettings
) -> None:
    """Tell the wallets when the customer is somewhere new: their cards' nearby stores follow them."""
    if last is None or fences.distance_m((last.latitude, last.longitude), point) > settings.wallet_refresh_distance_m:
        events.customer_moved.send(session, customer_id=customer_id)


def _cooling_down(session: Session, offer: GeoOffer, customer_id: int, now: datetime) -> bool:
    since = now - timedelta(minutes=offer.cooldown_minutes)
    return (
        session.scalar(
            select(GeoOfferDelivery.id)
            .where(
                GeoOfferDelivery.offer_id == offer.id,
                GeoOfferDelivery.customer_id == customer_id,
                GeoOfferDelivery.delivered_at > since,
            )
            .limit(1)
        )
        is not None
    )


def _deliver(session: Session, customer: Customer, match: Match, now: datetime) -> GeoOfferDelivery:
    delivery = GeoOfferDelivery(
        offer_id=match.offer.id, customer_id=customer.id, store_id=match.store_id, delivered_at=now
    )
    session.add(delivery)
    _grant(session, delivery, match.offer, now)
    session.flush()
    for channel in match.offer.channels:
        _send(
            session,
            customer,
            match.offer,
            OfferChannel(channel),
            f"geo:{delivery.id}:{channel}",
            reward_code=delivery.redemption.code if delivery.redemption else None,
        )
    return delivery


def _grant(session: Session, delivery: GeoOfferDelivery, offer: GeoOffer, now: datetime) -> None:
    """What the offer gives with it, once per delivery (the cooldown bounds how often)."""
    if offer.bonus_points:
        delivery.bonus_entry = grant_bonus(
            session=session,
            customer_id=delivery.customer_id,
            points=offer.bonus_points,
            reason=f"offer: {offer.title}",
            now=now,
        )
    if offer.reward_id is not None:
        try:
            with session.begin_nested():  # an out-of-stock gift must not undo the bonus or the offer
                delivery.redemption = grant_reward(
                    session=session,
                    customer_id=delivery.customer_id,
                    reward_id=offer.reward_id,
                    store_id=delivery.store_id,
                    now=now,
                )
        except RewardUnavailable as exc:
            log.info("offer %s sent without its reward: %s", offer.id, exc.detail)


def _send(
    session: Session,
    customer: Customer,
    offer: GeoOffer,
    channel: OfferChannel,
    dedupe_key: str,
    *,
    reward_code: str | None,
) -> None:
    """Through the outbox: consent, quiet hours and caps are checked when it is sent. A wallet
    message is queued only for a card in a wallet (without one it has nowhere to appear)."""
    wallet = OfferChannel.wallet
    if channel is wallet and customer.id not in services_of(session).channels.reachable(
        session, wallet.value, [customer.id]
    ):
        return
    body = f"{offer.body} (code {reward_code})".strip() if reward_code else offer.body
    content = {
        OfferChannel.push: {"title": offer.title, "body": body},
        OfferChannel.wallet: {"header": offer.title, "body": body or offer.title},
    }.get(channel, {"body": f"{offer.title}: {body}".rstrip(": ")})
    outbox.enqueue(
        session=session,
        customer_id=customer.id,
        channel=channel.value,
        content=content,
        dedupe_key=dedupe_key,
        template=f"geo-offer:{offer.id}",
    )


# --- data minimisation and the last known place ---------------------------------------------------


def delete_old_pings(*, session: Session, now: datetime, settings: GeoSettings) -> int:
    cutoff = now - timedelta(hours=settings.ping_retention_hours)
    return rowcount(session.execute(delete(LocationPing).where(LocationPing.recorded_at < cutoff)))


def last_location(session: Session, customer_id: int) -> tuple[float, float] | None:
    """For the quiet-hours rule: where the customer last was (within the retention period)."""
    row = session.execute(
        select(LocationPing.latitude, LocationPing.longitude)
        .where(LocationPing.customer_id == customer_id)
        .order_by(LocationPing.recorded_at.desc())
        .limit(1)
    ).first()
    return (row.latitude, row.longitude) if row else None


MAX_RELEVANT_TEXT = 120


def offer_texts(session: Session, stores: list[Store]) -> dict[int, str]:
    """Each store's open offer (the newest one if several), as the pass's relevantText."""
    now, texts = utcnow(), {}
    rows = session.execute(
        select(GeoOfferStore.store_id, GeoOffer)
        .join(GeoOffer, GeoOffer.id == GeoOfferStore.offer_id)
        .where(GeoOfferStore.store_id.in_([store.id for store in stores]), GeoOffer.active.is_(True))
        .order_by(GeoOffer.id.desc())
    ).all()
    zones = {store.id: store.timezone for store in stores}
    for store_id, offer in rows:
        if store_id not in texts and open_at(offer, zones[store_id], now):
            texts[store_id] = f"{offer.title}: {offer.body}".rstrip(": ")[:MAX_RELEVANT_TEXT]
    return texts
