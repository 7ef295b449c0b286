"""JSON Schema of a store card's pass.json: the keys Apple documents (WalletPasses `Pass`).

Unknown keys are refused (`additionalProperties: false`): Wallet ignores them silently, so a
designer's typo ("foregroundColour") would otherwise ship unnoticed. Keys for other pass
styles (boarding passes, poster event tickets, Apple Pay) are left out on purpose: every
program's pass is a storeCard.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

_COLOR = {"type": "string", "pattern": r"^rgb\(\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}\s*\)$"}
# W3C date and time with a zone (ISO 8601), as Wallet requires for dates.
_DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$"}
_URL = {"type": "string", "pattern": r"^https?://"}

_FIELD = {
    "type": "object",
    "required": ["key", "value"],
    "additionalProperties": False,
    "properties": {
        "key": {"type": "string", "minLength": 1},
        "value": {"type": ["string", "number"]},
        "label": {"type": "string"},
        "attributedValue": {"type": ["string", "number"]},
        # %@ is replaced by the new value; without it Wallet shows a generic message.
        "changeMessage": {"type": "string"},
        "currencyCode": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "dataDetectorTypes": {
            "type": "array",
            "items": {
                "enum": [
                    "PKDataDetectorTypePhoneNumber",
                    "PKDataDetectorTypeLink",
                    "PKDataDetectorTypeAddress",
                    "PKDataDetectorTypeCalendarEvent",
                ]
            },
        },
        "dateStyle": {
            "enum": ["PKDateStyleNone", "PKDateStyleShort", "PKDateStyleMedium", "PKDateStyleLong", "PKDateStyleFull"]
        },
        "timeStyle": {
            "enum": ["PKDateStyleNone", "PKDateStyleShort", "PKDateStyleMedium", "PKDateStyleLong", "PKDateStyleFull"]
        },
        "ignoresTimeZone": {"type": "boolean"},
        "isRelative": {"type": "boolean"},
        "numberStyle": {
            "enum": ["PKNumberStyleDecimal", "PKNumberStylePercent", "PKNumberStyleScientific", "PKNumberStyleSpellOut"]
        },
        "textAlignment": {
            "enum": ["PKTextAlignmentLeft", "PKTextAlignmentCenter", "PKTextAlignmentRight", "PKTextAlignmentNatural"]
        },
        "semantics": {"type": "object"},
    },
}


def _fields(max_items: int | None = None) -> dict:
    schema: dict[str, Any] = {"type": "array", "items": _FIELD}
    if max_items is not None:
        schema["maxItems"] = max_items
    return schema


_STORE_CARD = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "headerFields": _fields(3),
        "primaryFields": _fields(1),
        "secondaryFields": _fields(4),
        "auxiliaryFields": _fields(4),
        "backFields": _fields(),
        "additionalInfoFields": _fields(),
    },
}

_BARCODE = {
    "type": "object",
    "required": ["format", "message", "messageEncoding"],
    "additionalProperties": False,
    "properties": {
        "format": {
            "enum": ["PKBarcodeFormatQR", "PKBarcodeFormatPDF417", "PKBarcodeFormatAztec", "PKBarcodeFormatCode128"]
        },
        "message": {"type": "string", "minLength": 1},
        "messageEncoding": {"type": "string"},
        "altText": {"type": "string"},
    },
}

_LOCATION = {
    "type": "object",
    "required": ["latitude", "longitude"],
    "additionalProperties": False,
    "properties": {
        "latitude": {"type": "number", "minimum": -90, "maximum": 90},
        "longitude": {"type": "number", "minimum": -180, "maximum": 180},
        "altitude": {"type": "number"},
        "relevantText": {"type": "string"},
    },
}

_BEACON = {
    "type": "object",
    "required": ["proximityUUID"],
    "additionalProperties": False,
    "properties": {
        "proximityUUID": {"type": "string"},
        "major": {"type": "integer", "minimum": 0, "maximum": 65535},
        "minor": {"type": "integer", "minimum": 0, "maximum": 65535},
        "relevantText": {"type": "string"},
    },
}

PASS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pass.json of an Apple Wallet store card",
    "type": "object",
    "required": [
        "formatVersion",
        "passTypeIdentifier",
        "serialNumber",
        "teamIdentifier",
        "organizationName",
        "description",
        "storeCard",
    ],
    "additionalProperties": False,
    "properties": {
        "formatVersion": {"const": 1},
        "passTypeIdentifier": {"type": "string", "pattern": r"^pass\.[A-Za-z0-9.\-]+$"},
        "serialNumber": {"type": "string", "minLength": 1},
        "teamIdentifier": {"type": "string", "minLength": 1},
        "organizationName": {"type": "string", "minLength": 1},
        "description": {"type": "string", "minLength": 1},
        "storeCard": _STORE_CARD,
        "logoText": {"type": "string"},
        "backgroundColor": _COLOR,
        "foregroundColor": _COLOR,
        "labelColor": _COLOR,
        "suppressStripShine": {"type": "boolean"},
        "groupingIdentifier": {"type": "string"},
        "sharingProhibited": {"type": "boolean"},
        "barcode": _BARCODE,  # deprecated since iOS 9; kept for old devices
        "barcodes": {"type": "array", "items": _BARCODE, "minItems": 1},
        "locations": {"type": "array", "items": _LOCATION, "maxItems": 10},
        "beacons": {"type": "array", "items": _BEACON, "maxItems": 10},
        "maxDistance": {"type": "number", "minimum": 0},
        "relevantDate": _DATE,
        "expirationDate": _DATE,
        "voided": {"type": "boolean"},
        "webServiceURL": _URL,
        "authenticationToken": {"type": "string", "minLength": 16},
        "appLaunchURL": {"type": "string"},
        "associatedStoreIdentifiers": {"type": "array", "items": {"type": "number"}},
        "userInfo": {"type": "object"},
        "semantics": {"type": "object"},
        "nfc": {
            "type": "object",
            "required": ["message", "encryptionPublicKey"],
            "additionalProperties": False,
            "properties": {
                "message": {"type": "string", "maxLength": 64},
                "encryptionPublicKey": {"type": "string"},
                "requiresAuthentication": {"type": "boolean"},
            },
        },
    },
    # Apple: a web service needs both keys, and an app link needs the store identifiers.
    "dependentRequired": {
        "webServiceURL": ["authenticationToken"],
        "authenticationToken": ["webServiceURL"],
        "appLaunchURL": ["associatedStoreIdentifiers"],
    },
}

Draft202012Validator.check_schema(PASS_SCHEMA)
VALIDATOR = Draft202012Validator(PASS_SCHEMA)


def problems(document: Any) -> list[str]:
    """Every way the document breaks the schema, each as 'at <path>: <what>'."""
    found = []
    for error in sorted(VALIDATOR.iter_errors(document), key=lambda e: list(e.absolute_path)):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path) or "(top)"
        found.append(f"at {path.lstrip('.')}: {error.message}")
    return found
