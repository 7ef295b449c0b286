"""A zero-latency message provider on 127.0.0.1 that honours an Idempotency-Key, and its sender.

`POST /messages` with a JSON body and `Idempotency-Key: message-<id>` answers 201 with a
provider id. The provider accepts each key once: a repeat (the retry of a message whose first
answer never reached the worker) gets the first answer back and delivers nothing, as
Stripe-style idempotency keys work. It counts requests and acceptances per message id.

`hold_after(n)` makes it stop answering (requests are accepted, then wait) once n messages are
in, until `release()`: a test can kill a worker while its requests are provably in flight.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from app.messaging.models import Message
from app.messaging.providers import RetryLater, Undeliverable


class LoopbackProvider:
    def __init__(self) -> None:
        self.accepted: dict[str, str] = {}  # idempotency key -> provider id
        self.deliveries: Counter = Counter()  # message id -> times delivered (must end at 1)
        self.requests: Counter = Counter()  # message id -> requests received (retries included)
        self.in_flight: Counter = Counter()  # worker pid -> requests waiting for the release
        self.senders: dict[str, list[str]] = {}  # message id -> worker pid of each request
        self._lock = threading.Lock()
        self._hold_after: int | None = None
        self._released = threading.Event()
        self._released.set()
        self.held = threading.Event()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # Headers and body go out as one segment: no 40 ms wait on a delayed ACK.
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = provider._accept(
                    json.loads(body), self.headers.get("Idempotency-Key"), self.headers.get("X-Worker", "?")
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # quiet: thousands of requests
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a killed worker's connection breaks: expected here, and not worth a traceback

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> LoopbackProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def hold_after(self, count: int) -> None:
        self._hold_after = count

    def release(self) -> None:
        self._hold_after = None
        self._released.set()

    def _accept(self, body: dict, key: str | None, worker: str) -> tuple[int, dict]:
        if not key:
            return 400, {"error": "Idempotency-Key is required"}
        message_id = str(body["id"])
        with self._lock:
            self.requests[message_id] += 1
            self.senders.setdefault(message_id, []).append(worker)
            if key not in self.accepted:
                self.accepted[key] = "lb-" + uuid.uuid4().hex
                self.deliveries[message_id] += 1
            answer = {"id": self.accepted[key]}
            if self._hold_after is not None and len(self.accepted) >= self._hold_after:
                self._released.clear()
                self.held.set()
            waiting = not self._released.is_set()
            if waiting:
                self.in_flight[worker] += 1
        if waiting:
            self._released.wait()
        return 201, answer


class LoopbackSender:
    """Sends through the loopback provider; the message id is the idempotency key."""

    def __init__(self, url: str, *, timeout: float = 1.0) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout
        self._local = threading.local()
        self._worker = str(os.getpid())

    def send(self, message: Message) -> str:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        try:
            response = self._local.session.post(
                f"{self.url}/messages",
                json={"id": message.id, "content": message.content},
                headers={"Idempotency-Key": f"message-{message.id}", "X-Worker": self._worker},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise RetryLater(f"loopback unreachable: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryLater(f"loopback answered {response.status_code}")
        if response.status_code != 201:
            raise Undeliverable(f"loopback answered {response.status_code}: {response.text[:200]}")
        return response.json()["id"]
