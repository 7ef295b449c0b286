"""Field types shared by every domain's pydantic schemas."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema


def _timezone(value: str) -> str:
    if value not in _ZONES:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a name too long for a file
            raise ValueError(f"'{value}' is not an IANA time zone such as 'Europe/Paris'") from exc
    return value


def _e164(value: str) -> str:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("give the number in international format, such as +14155550123") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("this is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_ZONES = available_timezones()

TimeZone = Annotated[str, AfterValidator(_timezone)]
PhoneNumber = Annotated[str, AfterValidator(_e164)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$", to_upper=True)]
Money = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
# A file part of a multipart body (app.api.Multipart): never parsed into a model, binary in the document.
FilePart = Annotated[bytes, WithJsonSchema({"type": "string", "format": "binary"})]


class Input(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(Input):
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=2**31 - 1)  # what every database's OFFSET takes
