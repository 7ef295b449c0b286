"""Domain events the loyalty package publishes; wallets and messaging subscribe.

Receivers run inside the caller's transaction, so they may only write rows (the outbox),
never talk to the outside world: that happens after commit.
"""

from blinker import Namespace

_signals = Namespace()

#: sender: the Customer; kwargs: entry (LedgerEntry), previous_balance (int)
balance_changed = _signals.signal("balance-changed")
#: sender: the Customer; kwargs: previous_tier (Tier | None), tier (Tier | None)
tier_changed = _signals.signal("tier-changed")
#: sender: the Customer; kwargs: card (Card). The card's barcode or status changed.
card_changed = _signals.signal("card-changed")
#: sender: the Customer, just enrolled (card issued, before any signup bonus is credited).
customer_enrolled = _signals.signal("customer-enrolled")
#: sender: the Customer; kwargs: redemption (Redemption), reward (Reward). Bought with points
#: at the till, or given (redemption.points == 0).
reward_redeemed = _signals.signal("reward-redeemed")
