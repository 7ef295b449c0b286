"""LoyaltyClass and LoyaltyObject payloads, rendered from the program's Jinja2 templates.

The templates (wallet_templates/<slug>/google/*.json.j2) decide the layout, so a designer can
change labels, colours and modules; this module supplies the values and enforces what Google
requires whatever the template says.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from app.loyalty.models import BarcodeFormat

CLASS_TEMPLATE = "loyalty_class.json.j2"
OBJECT_TEMPLATE = "loyalty_object.json.j2"
MAX_MERCHANT_LOCATIONS = 10  # Google rejects a class with more
REVIEW_STATUS = "UNDER_REVIEW"

BARCODE_TYPES = {
    BarcodeFormat.qr: "QR_CODE",
    BarcodeFormat.pdf417: "PDF_417",
    BarcodeFormat.aztec: "AZTEC",
    BarcodeFormat.code128: "CODE_128",
}

_NOT_ALLOWED_IN_ID = re.compile(r"[^A-Za-z0-9._-]")


def google_id(issuer_id: str, suffix: str) -> str:
    """`issuerId.suffix`, the suffix reduced to what Google allows (letters, digits, . _ -)."""
    return f"{issuer_id}.{_NOT_ALLOWED_IN_ID.sub('_', suffix)}"


def class_id_for(issuer_id: str, program_slug: str) -> str:
    return google_id(issuer_id, f"{program_slug}-loyalty")


def object_id_for(issuer_id: str, member_number: str) -> str:
    # The member number never changes (a rotated barcode keeps it), so neither does the object.
    return google_id(issuer_id, f"card-{member_number}")


def payload_hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _tojson(value: Any) -> str:
    # Jinja's own tojson escapes <, > and & for HTML; these templates make JSON, not HTML.
    return json.dumps(value, ensure_ascii=False)


@lru_cache(maxsize=8)
def _environment(templates_dir: Path) -> Environment:
    environment = Environment(loader=FileSystemLoader(str(templates_dir)), undefined=StrictUndefined, autoescape=False)
    environment.filters["tojson"] = _tojson
    return environment


def render(templates_dir: Path, program_slug: str, name: str, context: dict) -> dict:
    template = _environment(templates_dir).select_template([f"{program_slug}/google/{name}", f"default/google/{name}"])
    return json.loads(template.render(**context))


def render_class(templates_dir: Path, program_slug: str, context: dict) -> dict:
    payload = render(templates_dir, program_slug, CLASS_TEMPLATE, context)
    # A DRAFT class can hold no objects, and an update of an approved class must say
    # UNDER_REVIEW to be applied: so it is always UNDER_REVIEW, whatever the template says.
    payload["reviewStatus"] = REVIEW_STATUS
    if len(payload.get("merchantLocations", [])) > MAX_MERCHANT_LOCATIONS:
        raise ValueError(f"the class template lists more than {MAX_MERCHANT_LOCATIONS} merchantLocations")
    return payload


def render_object(templates_dir: Path, program_slug: str, context: dict) -> dict:
    payload = render(templates_dir, program_slug, OBJECT_TEMPLATE, context)
    # A PATCH replaces every field it names: the object's messages belong to addMessage.
    payload.pop("messages", None)
    return payload
