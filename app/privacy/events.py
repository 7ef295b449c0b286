"""What the privacy package publishes; receivers run inside the erasing transaction (rows only)."""

from blinker import Namespace

_signals = Namespace()

customer_erased = _signals.signal(
    "customer-erased",
    doc="sender: the Customer, just erased (personal fields blank, card closed). Packages that keep copies of "
    "the person (webhook events) forget them here.",
)
