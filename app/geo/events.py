"""What the geo domain publishes; receivers run inside the caller's transaction (rows only).
The wallets listen, so geo imports no wallet (`app/wiring.py` connects them)."""

from blinker import Namespace

_signals = Namespace()

offers_changed = _signals.signal(
    "geo-offers-changed",
    doc="sender: the Session; kwargs: program_id. An offer was created, changed or deleted: what cards show "
    "near stores (relevantText) may have changed.",
)
customer_moved = _signals.signal(
    "geo-customer-moved",
    doc="sender: the Session; kwargs: customer_id. The customer shared a position far from the last one: the "
    "stores their cards list as nearby may have changed.",
)
