"""Google Wallet: a LoyaltyClass per program, a LoyaltyObject per card, kept current.

Importing the package connects the loyalty event receivers (balance and tier changes queue
object patches) and registers the outbox's "google_wallet" channel.
"""

from app.messaging.providers import register_channel
from app.wallet.google import receivers  # noqa: F401  (connects the receivers)


def _sender(app):
    from app.wallet.google.sender import build_sender

    return build_sender(app)


register_channel("google_wallet", _sender)
