"""What a message says: templates rendered with the customer's fields, checked per channel.

Rendering happens at enqueue, so the outbox row holds exactly what goes out (staff can read
it) and a message that could never be sent (a push payload over 3,993 bytes, an SMS over the
segment cap) is refused while the caller can still be told.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Unprocessable
from app.loyalty.models import Card, Customer, Program, Tier

# RFC 8291: a 4,096-byte push message record, minus the aes128gcm header (86), the tag (16)
# and the padding delimiter (1).
MAX_PUSH_PAYLOAD = 3993

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


class MessageRejected(Unprocessable):
    slug, title = "message-rejected", "Message refused"


def customer_fields(session: Session, customer_id: int) -> dict:
    """The fields a template may use; nothing secret (no card tokens, no contact details)."""
    fields = customers_fields(session, [customer_id])
    if customer_id not in fields:
        raise MessageRejected(f"There is no customer {customer_id}.", field="customer_id")
    return fields[customer_id]


def customers_fields(session: Session, customer_ids: list[int]) -> dict[int, dict]:
    """`customer_fields` of many customers in one query (a campaign batch); absent ids are left out."""
    rows = session.execute(
        select(
            Customer.id,
            Customer.first_name,
            Customer.last_name,
            Card.member_number,
            Customer.points_balance,
            Tier.name,
            Program.name,
        )
        .join(Program, Program.id == Customer.program_id)
        .outerjoin(Card, Card.customer_id == Customer.id)
        .outerjoin(Tier, Tier.id == Customer.tier_id)
        .where(Customer.id.in_(customer_ids))
    ).all()
    return {
        customer_id: {
            "first_name": first,
            "last_name": last,
            "name": f"{first} {last}".strip(),
            "member_number": member_number or "",
            "points": points,
            "tier": tier or "",
            "program": program,
        }
        for customer_id, first, last, member_number, points, tier, program in rows
    }


@functools.lru_cache(maxsize=512)
def _template(source: str) -> Template:
    return _ENV.from_string(source)  # compiling is the slow part; a campaign repeats one text


def render(content: Mapping, context: Mapping) -> dict:
    """Every top-level text field rendered as a sandboxed Jinja template; other values kept."""
    try:
        return {
            key: _template(value).render(context) if isinstance(value, str) else value for key, value in content.items()
        }
    except TemplateError as exc:
        raise MessageRejected(f"The message template does not render: {exc}.") from exc


# --- push ---


def push_payload(content: Mapping) -> bytes:
    """The plaintext the browser's service worker receives: the notification to show."""
    fields = {key: content[key] for key in ("title", "body", "url", "tag", "icon") if content.get(key)}
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def check_push(content: Mapping) -> None:
    if not content.get("title") and not content.get("body"):
        raise MessageRejected("A push message needs a title or a body.")
    size = len(push_payload(content))
    if size > MAX_PUSH_PAYLOAD:
        raise MessageRejected(f"The push payload is {size} bytes; Web Push carries at most {MAX_PUSH_PAYLOAD}.")


# --- SMS ---

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")  # each takes two septets (ESC + char)


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    count: int
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)


def _pack(sizes: list[int], single: int, multi: int) -> int:
    """Segments needed; a character (escape pair, surrogate pair) is never split across two."""
    if sum(sizes) <= single:
        return 1 if sizes else 0
    count, used = 1, 0
    for size in sizes:
        if used + size > multi:
            count, used = count + 1, 0
        used += size
    return count


def sms_segments(text: str) -> Segments:
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        sizes = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return Segments("GSM-7", _pack(sizes, 160, 153), sum(sizes))
    sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return Segments("UCS-2", _pack(sizes, 70, 67), sum(sizes))


def with_opt_out(body: str, footer: str) -> str:
    """Marketing texts say how to stop them, unless the template already does."""
    if not footer or "STOP" in body.upper():
        return body
    return f"{body.rstrip()} {footer}"


def check_sms(content: Mapping, *, max_segments: int) -> Segments:
    body = content.get("body")
    if not isinstance(body, str) or not body.strip():
        raise MessageRejected("An SMS needs a body.")
    segments = sms_segments(body)
    if segments.count > max_segments:
        raise MessageRejected(
            f"The SMS is {segments.count} {segments.encoding} segments ({segments.units} units); "
            f"at most {max_segments} are allowed."
        )
    return segments


# --- voice ---


def check_voice(content: Mapping) -> None:
    if not content.get("recording_id") and not str(content.get("script") or "").strip():
        raise MessageRejected("A voicemail needs a recording_id or a script to read out.")
