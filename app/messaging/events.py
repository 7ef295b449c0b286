"""Events the messaging package publishes (blinker, like app/loyalty/events.py).

Receivers run inside the caller's transaction: they may only write rows, never call out.
"""

from blinker import Namespace

_signals = Namespace()

message_delivered = _signals.signal(
    "message-delivered",
    doc="sender: the Message; kwargs: at (datetime). The provider confirmed delivery (an SMS status callback "
    "'delivered' or 'read', a call 'completed'); channels without receipts never send it.",
)
