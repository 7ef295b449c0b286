"""A webhook receiver for tests: a real HTTPS server on 127.0.0.1 (stdlib http.server over TLS,
a certificate from a throwaway CA), in a thread.

It keeps every request as received (raw body bytes and headers), answers from a script
(`respond(500)` twice, then the default 200), and counts the deliveries it accepted: a receiver
that drops repeats by Pointcard-Delivery, as the README tells receivers to.
"""

from __future__ import annotations

import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.fakes import ServedInThread
from tests.fakes.tls import make_tls_files


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered


@dataclass
class Answer:
    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class FakeReceiver(ServedInThread):
    def __init__(self, directory: Path) -> None:
        self.ca_file, cert_file, key_file = make_tls_files(directory)
        self.requests: list[Received] = []
        self.accepted: Counter = Counter()  # Pointcard-Delivery -> 2xx answers given
        self._script: list[Answer] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                answer = receiver._answer(self.path, dict(self.headers.items()), body)
                data = answer.body.encode()
                self.send_response(answer.status)
                for name, value in {"Content-Type": "text/plain", **answer.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert_file), str(key_file))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_port
        self.url = f"https://127.0.0.1:{self.port}/hooks/pointcard"
        self._serve()

    def respond(self, status: int, body: str = "", headers: dict[str, str] | None = None) -> None:
        """Answer the next request so (once); later ones get 200."""
        with self._lock:
            self._script.append(Answer(status, body, dict(headers or {})))

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        with self._lock:
            answer = self._script.pop(0) if self._script else Answer(200, "thanks")
            self.requests.append(Received(path, headers, body, answer.status))
            if 200 <= answer.status < 300:
                self.accepted[headers.get("Pointcard-Delivery")] += 1
            return answer
