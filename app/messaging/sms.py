"""SMS through a Twilio Messaging Service, and what the inbound keywords do."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.encryption import blind_index
from app.loyalty.models import Channel, Consent, Customer, Program
from app.loyalty.service import current_consents, record_consents
from app.messaging.config import MessagingSettings
from app.messaging.models import Message
from app.messaging.providers import ConsoleSender, Sender
from app.messaging.twilio_client import TwilioSender, make_twilio_sender, webhook_url

if TYPE_CHECKING:
    from app.wiring import Services

# Carrier and CTIA keywords; the whole message, any case, is the keyword.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})


class TwilioSmsSender(TwilioSender):
    required_setting = "twilio_messaging_service_sid"

    def create(self, client, phone: str, message: Message) -> str:
        return client.messages.create(
            to=phone,
            messaging_service_sid=self.messaging.twilio_messaging_service_sid,
            body=message.content["body"],
            status_callback=webhook_url(self.settings, "/webhooks/twilio/status", m=message.id),
            # A stale offer is dropped by Twilio rather than delivered hours late.
            validity_period=int(message.content.get("validity_seconds") or self.messaging.sms_validity_seconds),
        ).sid


def make_sms_sender(services: Services) -> Sender:
    return make_twilio_sender(
        services.settings,
        backend=services.settings.messaging.sms_backend,
        real=TwilioSmsSender,
        console=ConsoleSender,
    )


# --- inbound keywords ----------------------------------------------------------------------------


def keyword(body: str) -> str | None:
    word = body.strip().upper().rstrip(".!")
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None


def customers_with_phone(session: Session, phone: str) -> list[Customer]:
    index = blind_index(phone, column="customers.phone")
    return list(session.scalars(select(Customer).where(Customer.phone_index == index).order_by(Customer.id)))


def handle_keyword(
    *, session: Session, phone: str, body: str, settings: MessagingSettings, ip_address: str | None = None
) -> str | None:
    """Apply STOP / START / HELP from `phone`; the reply to send back, or None to stay silent."""
    action = keyword(body)
    if action is None:
        return None
    customers = customers_with_phone(session, phone)
    program = customers[0].program.name if customers else program_name(session)
    if action == "help":
        return f"{program}: loyalty messages. {settings.sms_help_text}"
    if action == "stop":
        channels = [Channel.sms, Channel.voice] if body.strip().upper() == "STOPALL" else [Channel.sms]
        for customer in customers:
            record_consents(
                session=session,
                customer=customer,
                consents=dict.fromkeys(channels, False),
                source=f"sms-keyword:{body.strip().upper()[:40]}",
                disclosure=body.strip()[:2000],
                ip_address=ip_address,
            )
        return f"{program}: you are unsubscribed and will get no more messages. Reply START to resubscribe."
    restored = [c for c in customers if _restore(session, c, body.strip().upper())]
    if not restored:
        return f"{program}: there is no earlier opt-in for this number. Join on the card page to get offers."
    return f"{program}: you are resubscribed to loyalty messages. Reply HELP for help, STOP to opt out."


def _restore(session: Session, customer: Customer, word: str) -> bool:
    """START brings back the opt-in the customer gave before, with that opt-in's disclosure."""
    earlier = session.scalar(
        select(Consent)
        .where(
            Consent.customer_id == customer.id,
            Consent.channel == Channel.sms,
            Consent.granted.is_(True),
            Consent.disclosure != "",
        )
        .order_by(Consent.id.desc())
        .limit(1)
    )
    if earlier is None:
        return False
    if current_consents(session=session, customer_id=customer.id).get(Channel.sms) is not earlier:
        record_consents(
            session=session,
            customer=customer,
            consents={Channel.sms: True},
            source=f"sms-keyword:{word[:40]}",
            disclosure=earlier.disclosure,
            ip_address=None,
        )
    return True


def program_name(session: Session) -> str:
    return session.scalar(select(Program.name).order_by(Program.id).limit(1)) or "Pointcard"
