"""An outbox worker process, as `flask messaging work` runs it, with the loopback channel added.

    python -m tests.fakes.worker <provider url> [--marketing]

Settings come from the environment (DATABASE_URL, POINTCARD_MESSAGING__...), like the real
worker's. The loopback channel is registered through the public registry (as marketing, with
the SMS opt-in, when asked: then consent, quiet hours and caps are checked for every message);
the loop is the real one.
"""

from __future__ import annotations

import signal
import sys
import threading

from app import create_app
from app.loyalty.models import Channel
from app.messaging.providers import build_senders, register_channel
from app.messaging.worker import run_worker
from tests.fakes.loopback import LoopbackSender

CHANNEL = "loopback"


def register(url: str, *, marketing: bool) -> None:
    register_channel(
        CHANNEL,
        lambda app: LoopbackSender(url, timeout=2.0),
        marketing=marketing,
        consent=Channel.sms if marketing else None,
    )


def main(url: str, marketing: bool) -> None:
    register(url, marketing=marketing)
    app = create_app()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    senders = build_senders(app)
    print("ready", flush=True)
    run_worker(
        database=app.extensions["database"], senders=senders, settings=app.extensions["settings"].messaging, stop=stop
    )


if __name__ == "__main__":
    main(sys.argv[1], "--marketing" in sys.argv[2:])
