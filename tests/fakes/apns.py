"""A local APNs for tests: a real HTTP/2 server over TLS on 127.0.0.1 (hypercorn, in a thread).

It checks what Apple checks and records what it accepted:
- the connection is HTTP/2 and the request is POST /3/device/<token> with a JSON object body;
- token auth: `authorization: bearer <JWT>` signed ES256 with the team's .p8 key (verified with
  its public key), `kid` = key id, `iss` = team id, `iat` under an hour old;
  or, with `client_ca`, a TLS client certificate that chains to it (then no JWT is needed);
- `apns-topic` = the pass type identifier.
A test scripts answers per device token (410 Unregistered, 429 with Retry-After...) with
`respond`; everything else gets 200 and an apns-id.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from hypercorn.asyncio import serve
from hypercorn.config import Config

from tests.fakes.tls import make_tls_files

_DEVICE_PATH = re.compile(r"^/3/device/([0-9A-Za-z]+)$")


@dataclass
class Push:
    device_token: str
    topic: str
    http_version: str
    body: dict
    bearer: str | None
    jwt_header: dict | None
    jwt_claims: dict | None


@dataclass
class Answer:
    status: int
    reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeApns:
    def __init__(
        self,
        *,
        directory: Path,
        topic: str,
        team_id: str,
        key_id: str | None = None,
        public_key: ec.EllipticCurvePublicKey | None = None,
        client_ca: Path | None = None,
    ) -> None:
        self.topic, self.team_id, self.key_id, self.public_key = topic, team_id, key_id, public_key
        self.client_ca = client_ca
        self.ca_file, self._cert_file, self._key_file = make_tls_files(directory)
        self.pushes: list[Push] = []
        self.refusals: list[str] = []
        self._answers: dict[str, list[Answer]] = {}
        self._lock = threading.Lock()

    # --- the test's side ---

    def respond(
        self, device_token: str, status: int, reason: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next push to this device with this status (once)."""
        with self._lock:
            self._answers.setdefault(device_token, []).append(Answer(status, reason, dict(headers or {})))

    def reset(self) -> None:
        with self._lock:
            self.pushes.clear()
            self.refusals.clear()
            self._answers.clear()

    def start(self) -> FakeApns:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self.url = f"https://127.0.0.1:{listener.getsockname()[1]}"
        config = Config()
        config.bind = [f"fd://{listener.detach()}"]  # hypercorn owns the socket from here
        config.certfile, config.keyfile = str(self._cert_file), str(self._key_file)
        config.alpn_protocols = ["h2"]  # APNs speaks HTTP/2 only
        config.accesslog, config.errorlog = None, None
        if self.client_ca is not None:
            config.ca_certs, config.verify_mode = str(self.client_ca), ssl.CERT_REQUIRED
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        started = threading.Event()

        async def main() -> None:
            started.set()
            await serve(self._asgi, config, shutdown_trigger=self._stop.wait)

        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(main(),), daemon=True)
        self._thread.start()
        started.wait(5)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()

    # --- the server's side ---

    def _check_token(self, bearer: str | None) -> tuple[dict | None, dict | None, str | None]:
        if self.client_ca is not None and bearer is None:
            return None, None, None  # certificate auth: the TLS handshake already checked the client
        if bearer is None or self.public_key is None:
            return None, None, "MissingProviderToken"
        try:
            header = jwt.get_unverified_header(bearer)
            claims = jwt.decode(bearer, self.public_key, algorithms=["ES256"], options={"require": ["iss", "iat"]})
        except jwt.PyJWTError as exc:
            self.refusals.append(f"JWT: {exc}")
            return None, None, "InvalidProviderToken"
        if header.get("kid") != self.key_id or claims["iss"] != self.team_id:
            self.refusals.append(f"JWT kid/iss: {header}, {claims}")
            return None, None, "InvalidProviderToken"
        if time.time() - claims["iat"] > 3600:
            return None, None, "ExpiredProviderToken"
        return header, claims, None

    def _judge(self, scope: dict, body: bytes) -> tuple[Answer, Push | None]:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        match = _DEVICE_PATH.match(scope["path"])
        if scope["method"] != "POST" or match is None:
            return Answer(405 if match else 404, "BadPath"), None
        auth = headers.get("authorization", "")
        bearer = auth[len("bearer ") :] if auth.lower().startswith("bearer ") else None
        jwt_header, claims, refused = self._check_token(bearer)
        if refused:
            return Answer(403, refused), None
        if headers.get("apns-topic") != self.topic:
            self.refusals.append(f"topic {headers.get('apns-topic')!r}")
            return Answer(400, "TopicDisallowed" if "apns-topic" in headers else "MissingTopic"), None
        try:
            payload = json.loads(body)
        except ValueError:
            return Answer(400, "BadPayload"), None
        if not isinstance(payload, dict):
            return Answer(400, "BadPayload"), None
        push = Push(
            device_token=match[1],
            topic=headers["apns-topic"],
            http_version=scope["http_version"],
            body=payload,
            bearer=bearer,
            jwt_header=jwt_header,
            jwt_claims=claims,
        )
        with self._lock:
            queued = self._answers.get(push.device_token)
            answer = queued.pop(0) if queued else Answer(200)
            self.pushes.append(push)
        return answer, push

    async def _asgi(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        answer, _ = self._judge(scope, body)
        headers = [(b"apns-id", str(uuid.uuid4()).upper().encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in answer.headers.items()]
        content = b""
        if answer.status != 200:
            reason = {"reason": answer.reason or "InternalServerError"}
            if answer.status == 410:
                reason["timestamp"] = int(time.time() * 1000)
            content = json.dumps(reason).encode()
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": content})
