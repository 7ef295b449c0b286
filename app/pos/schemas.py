from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from app.loyalty.models import RewardKind
from app.schemas import Currency, Input, Money, Output

Barcode = Field(min_length=1, max_length=128, description="What the scanner read from the wallet pass.")


class ScanRequest(Input):
    barcode: str = Barcode


class RewardOption(Output):
    id: int
    name: str
    kind: RewardKind
    points_cost: int
    affordable: bool


class ScanResult(Output):
    member_number: str
    first_name: str
    balance: int
    tier: str | None
    next_tier: str | None
    points_to_next_tier: int | None
    rewards: list[RewardOption]


class PurchaseRequest(Input):
    barcode: str = Barcode
    amount: Money
    currency: Currency
    store_id: int | None = Field(default=None, description="Defaults to the cashier's store.")


class PurchaseResult(Output):
    transaction_id: int
    points_earned: int
    balance: int
    tier: str | None


class RedemptionRequest(Input):
    barcode: str = Barcode
    reward_id: int


class RedemptionResult(Output):
    redemption_id: int
    code: str
    reward: str
    points_spent: int
    balance: int


class RefundRequest(Input):
    amount: Money | None = Field(default=None, description="Part of the purchase to refund; omit for all of it.")


class RefundResult(Output):
    transaction_id: int
    refunded_amount: Decimal
    points_reversed: int
    balance: int
