"""Outgoing webhooks: signed event deliveries to endpoints the admins register.

Importing the package connects the event receivers (loyalty, messaging and campaign events
become deliveries in the same transaction) and registers the outbox's "webhook" channel.
"""

from flask import Flask

from app.messaging.providers import register_channel
from app.webhooks import receivers  # noqa: F401  (connects the receivers)


def _sender(app: Flask):
    from app.webhooks.sender import make_sender  # httpx and the TLS context: only in workers

    return make_sender(app)


# Transactional (no consent, quiet hours or caps: the receiver is a system), and the sender
# counts its own tries, on the webhook schedule.
register_channel("webhook", _sender, own_retry_limit=True)
