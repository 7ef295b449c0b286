"""What the campaigns package publishes; receivers run inside the caller's transaction (rows only)."""

from blinker import Namespace

_signals = Namespace()

scores_written = _signals.signal(
    "scores-written",
    doc="sender: the Session; kwargs: program_id, as_of (date). A program's scores for as_of are written (not "
    "yet committed): receivers may compare them with the previous day's.",
)
customer_won_back = _signals.signal(
    "customer-won-back",
    doc="sender: the Customer; kwargs: at (datetime). A visit ended a lapse: their latest status was lapsing or "
    "lapsed and is now won back.",
)
