from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from pydantic import AwareDatetime, EmailStr, Field, model_validator

from app.loyalty.models import BarcodeFormat, Channel, EntryKind, RewardKind, Rounding
from app.schemas import Input, Name, Output, Page, PhoneNumber, TimeZone


class ProgramRead(Output):
    id: int
    name: str
    currency: str
    points_per_unit: Decimal
    rounding: Rounding
    expiry_months: int | None
    tier_window_days: int
    signup_bonus: int
    referrer_bonus: int
    referee_bonus: int
    timezone: str
    barcode_format: BarcodeFormat


class ProgramUpdate(Input):
    name: Name | None = None
    points_per_unit: Decimal | None = Field(default=None, gt=0, max_digits=10, decimal_places=4)
    rounding: Rounding | None = None
    expiry_months: int | None = Field(default=None, ge=1, le=120)
    tier_window_days: int | None = Field(default=None, ge=1, le=3660)
    signup_bonus: int | None = Field(default=None, ge=0)
    referrer_bonus: int | None = Field(default=None, ge=0)
    referee_bonus: int | None = Field(default=None, ge=0)
    timezone: TimeZone | None = None
    barcode_format: BarcodeFormat | None = None


class TierCreate(Input):
    name: Name
    threshold: int = Field(ge=0, description="Qualifying points in the rolling window.")
    multiplier: Decimal = Field(default=Decimal(1), gt=0, le=100, max_digits=6, decimal_places=3)
    benefits: list[str] = Field(default_factory=list, max_length=20)


class TierUpdate(Input):
    name: Name | None = None
    threshold: int | None = Field(default=None, ge=0)
    multiplier: Decimal | None = Field(default=None, gt=0, le=100, max_digits=6, decimal_places=3)
    benefits: list[str] | None = Field(default=None, max_length=20)


class TierRead(Output):
    id: int
    name: str
    threshold: int
    multiplier: Decimal
    benefits: list[str]


class RewardFields(Input):
    description: str = Field(default="", max_length=2000)
    stock: int | None = Field(default=None, ge=0, description="None: unlimited.")
    active: bool = True
    active_from: AwareDatetime | None = None
    active_until: AwareDatetime | None = None
    value: Decimal | None = Field(default=None, gt=0, max_digits=12, decimal_places=2)
    percent_off: int | None = Field(default=None, ge=1, le=100)
    charity_name: str | None = Field(default=None, max_length=120)
    tier_id: int | None = None
    tier_days: int | None = Field(default=None, ge=1, le=3660)


class RewardCreate(RewardFields):
    name: Name
    kind: RewardKind
    points_cost: int = Field(gt=0)

    @model_validator(mode="after")
    def _kind_has_its_fields(self) -> RewardCreate:
        needs = {
            RewardKind.discount: ("value or percent_off", self.value is not None or self.percent_off is not None),
            RewardKind.gift_card: ("value", self.value is not None),
            RewardKind.charity_donation: ("value and charity_name", self.value is not None and bool(self.charity_name)),
            RewardKind.tier_upgrade: ("tier_id", self.tier_id is not None),
        }
        what, present = needs.get(self.kind, ("", True))
        if not present:
            raise ValueError(f"a {self.kind.value} reward needs {what}")
        if self.active_from and self.active_until and self.active_until <= self.active_from:
            raise ValueError("active_until must be after active_from")
        return self


class RewardUpdate(Input):
    name: Name | None = None
    description: str | None = Field(default=None, max_length=2000)
    points_cost: int | None = Field(default=None, gt=0)
    stock: int | None = Field(default=None, ge=0)
    active: bool | None = None
    active_from: AwareDatetime | None = None
    active_until: AwareDatetime | None = None
    value: Decimal | None = Field(default=None, gt=0, max_digits=12, decimal_places=2)
    percent_off: int | None = Field(default=None, ge=1, le=100)


class RewardRead(Output):
    id: int
    name: str
    description: str
    kind: RewardKind
    points_cost: int
    stock: int | None
    active: bool
    active_from: datetime | None
    active_until: datetime | None
    value: Decimal | None
    percent_off: int | None
    charity_name: str | None
    tier_id: int | None
    tier_days: int | None


class PromotionCreate(Input):
    name: Name
    multiplier: Decimal = Field(gt=0, le=100, max_digits=6, decimal_places=3)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    store_id: int | None = None
    tier_id: int | None = None

    @model_validator(mode="after")
    def _ordered(self) -> PromotionCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class PromotionUpdate(Input):
    name: Name | None = None
    multiplier: Decimal | None = Field(default=None, gt=0, le=100, max_digits=6, decimal_places=3)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    active: bool | None = None


class PromotionRead(Output):
    id: int
    name: str
    multiplier: Decimal
    starts_at: datetime
    ends_at: datetime
    store_id: int | None
    tier_id: int | None
    active: bool


class Consents(Input):
    sms: bool = False
    push: bool = False
    voice: bool = False
    email: bool = False

    def by_channel(self) -> dict[Channel, bool]:
        return {Channel(name): granted for name, granted in self.model_dump().items()}


class EnrollRequest(Input):
    name: Name | None = Field(
        default=None, description="Full name, when first_name is not given: its first word is taken as the first name."
    )
    first_name: Name | None = None
    last_name: str | None = Field(default=None, max_length=100)
    email: EmailStr | None = None
    phone: PhoneNumber | None = None
    timezone: TimeZone | None = None
    consents: Consents = Field(default_factory=Consents)
    consent_text: str = Field(default="", max_length=2000, description="The disclosure the customer agreed to.")
    referral_code: str | None = Field(default=None, min_length=4, max_length=16)

    @model_validator(mode="after")
    def _split_the_name(self) -> EnrollRequest:
        if self.first_name is None:
            if self.name is None:
                raise ValueError("give first_name (and last_name), or name")
            first, _, last = self.name.partition(" ")
            self.first_name, self.last_name = first, self.last_name or last.strip()
        self.last_name = (self.last_name or "").strip()
        return self

    @property
    def names(self) -> tuple[str, str]:
        """(first name, last name), as the validator settled them."""
        assert self.first_name is not None and self.last_name is not None
        return self.first_name, self.last_name

    @model_validator(mode="after")
    def _consent_needs_its_disclosure(self) -> EnrollRequest:
        # An opt-in only counts with the exact text the customer agreed to on record.
        if any(self.consents.by_channel().values()) and not self.consent_text.strip():
            raise ValueError("consent_text (the disclosure shown to the customer) is required with any consent")
        return self


class EnrollResponse(Output):
    customer_id: int
    member_number: str
    barcode: str
    card_url: str
    apple_pass_url: str
    google_save_url: str
    balance: int
    referral_code: str


class ConsentChannel(enum.StrEnum):
    """What the card page's toggles may change."""

    push = "push"
    sms = "sms"
    email = "email"
    location = "location"


class ConsentsUpdate(Input):
    """The card page's toggles: each channel sent is recorded with the text shown beside it."""

    consents: dict[ConsentChannel, bool] = Field(min_length=1)
    disclosure: str = Field(min_length=1, max_length=2000)


class ConsentsRead(Output):
    consents: dict[str, bool]


class CustomerRead(Output):
    id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    timezone: str | None
    member_number: str
    balance: int
    tier: str | None
    referral_code: str
    created_at: datetime


class CustomerQuery(Page):
    email: str | None = None
    phone: str | None = None
    member_number: str | None = None
    include_erased: bool = Field(
        default=False,
        description="Also list customers who asked to be erased (their amounts stay, their names are gone).",
    )


class LedgerEntryRead(Output):
    id: int
    kind: EntryKind
    points: int
    balance_after: int
    reason: str
    purchase_id: int | None
    redemption_id: int | None
    store_id: int | None
    expires_at: datetime | None
    created_at: datetime


class AdjustmentCreate(Input):
    points: int = Field(description="Positive to add, negative to remove.")
    reason: str = Field(min_length=3, max_length=200)

    @model_validator(mode="after")
    def _nonzero(self) -> AdjustmentCreate:
        if self.points == 0:
            raise ValueError("points must not be zero")
        return self


class CardRead(Output):
    member_number: str
    barcode: str
    card_url: str


class CardTokenRequest(Input):
    card_token: str = Field(min_length=8, max_length=128, description="The secret from the card page's URL.")
