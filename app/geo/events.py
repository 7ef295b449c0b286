"""What the geo domain publishes; receivers run inside the caller's transaction (rows only)."""

from blinker import Namespace

_signals = Namespace()

#: sender: the Session; kwargs: program_id. An offer was created, changed or deleted, so what
#: wallet passes show near stores (relevantText) may have changed.
offers_changed = _signals.signal("geo-offers-changed")
#: sender: the Session; kwargs: customer_id. The customer shared a position far from the last
#: one, so the stores their cards list as nearby may have changed.
customer_moved = _signals.signal("geo-customer-moved")
