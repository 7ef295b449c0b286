"""Apple Wallet: signed storeCard passes, the PassKit web service, and APNs pushes on change.

Importing the package connects the loyalty-event receivers (once: module-level functions)
and registers the outbox channel that carries the pushes.
"""

from flask import Flask

from app.messaging.providers import register_channel
from app.wallet.apple import receivers  # noqa: F401  (connects the receivers)
from app.wallet.apple.service import CHANNEL


def _pusher(app: Flask):
    from app.wallet.apple.providers import make_pusher  # httpx and the keys: only in workers

    return make_pusher(app)


register_channel(CHANNEL, _pusher)
