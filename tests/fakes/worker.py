"""An outbox worker process, as `flask messaging work` runs it, with the loopback channel added.

    python -m tests.fakes.worker <provider url> [--marketing]

Settings come from the environment (DATABASE_URL, POINTCARD_MESSAGING__...), like the real
worker's. The loopback channel is added to the wiring's channels the way any channel is declared
(as marketing, with the SMS opt-in, when asked: then consent, quiet hours and caps are checked
for every message); the loop is the real one.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from app import wiring
from app.loyalty.models import Channel
from app.messaging.channels import TRANSACTIONAL, ChannelSpec, marketing
from app.messaging.worker import run_worker
from tests.fakes.loopback import LoopbackSender

CHANNEL = "loopback"
URL_VARIABLE = "POINTCARD_TEST_LOOPBACK_URL"


def loopback_sender(_services: wiring.Services) -> LoopbackSender:
    return LoopbackSender(os.environ[URL_VARIABLE], timeout=2.0)


def loopback_channel(*, marketing_messages: bool) -> ChannelSpec:
    policy = marketing(Channel.sms) if marketing_messages else TRANSACTIONAL
    return ChannelSpec(CHANNEL, "tests.fakes.worker:loopback_sender", policy)


def main(url: str, marketing_messages: bool) -> None:
    os.environ[URL_VARIABLE] = url
    services = wiring.build(channels=(*wiring.CHANNELS, loopback_channel(marketing_messages=marketing_messages)))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    senders = services.senders()
    print("ready", flush=True)
    run_worker(database=services.database, senders=senders, settings=services.settings.messaging, stop=stop)


if __name__ == "__main__":
    main(sys.argv[1], "--marketing" in sys.argv[2:])
