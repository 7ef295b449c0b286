"""Domain events the loyalty package publishes; wallets, webhooks and campaigns subscribe
(`app/wiring.py` connects them; `flask events list` prints who listens).

Receivers run inside the caller's transaction, so they may only write rows (the outbox),
never talk to the outside world: that happens after commit.
"""

from blinker import Namespace

_signals = Namespace()

balance_changed = _signals.signal(
    "balance-changed", doc="sender: the Customer; kwargs: entry (LedgerEntry), previous_balance (int)."
)
tier_changed = _signals.signal(
    "tier-changed", doc="sender: the Customer; kwargs: previous_tier (Tier | None), tier (Tier | None)."
)
card_changed = _signals.signal("card-changed", doc="sender: the Customer; kwargs: card. Its barcode or status changed.")
customer_enrolled = _signals.signal(
    "customer-enrolled", doc="sender: the Customer, just enrolled (card issued, before any signup bonus)."
)
reward_redeemed = _signals.signal(
    "reward-redeemed",
    doc="sender: the Customer; kwargs: redemption, reward. Bought with points at the till, or given (0 points).",
)
