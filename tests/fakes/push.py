"""A local Web Push service (RFC 8030) that checks what a browser's push service checks.

`new_subscription()` plays the browser: it makes the P-256 key pair and auth secret a
PushSubscription has and returns PushSubscription.toJSON(). For every push it then verifies
- `Authorization: vapid t=<JWT>, k=<key>` (RFC 8292): the JWT's ES256 signature with `k`, `k`
  equal to the server's public key, `aud` = this service's origin, `exp` in the future and at
  most 24 h ahead, `sub` a mailto: or https: contact;
- `TTL`, `Urgency` and `Content-Encoding: aes128gcm` headers, a record of at most 4,096 bytes;
- and decrypts the body with the subscription's private key (RFC 8291).
Answers are scripted per subscription with `respond` (410, 429 + Retry-After...); else 201.

`shown()` is what the browsers would show, as RFC 8030 5.4 has it for browsers that are offline
while the pushes come: a push with the `Topic` of one still waiting replaces it.
"""

from __future__ import annotations

import base64
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.wrappers import Request, Response

from tests.fakes import LocalServer

_PATH = re.compile(r"^/push/([0-9a-f]{32})$")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Delivery:
    subscription: str
    plaintext: bytes
    claims: dict
    headers: dict


@dataclass
class Answer:
    status: int
    headers: dict = field(default_factory=dict)


class FakePushService:
    def __init__(self, *, vapid_public_key: str | None = None) -> None:
        self.vapid_public_key = vapid_public_key  # when set, pushes signed by another key are refused
        self._keys: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = {}
        self._answers: dict[str, list[Answer]] = {}
        self._lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        self.refusals: list[str] = []
        self.topics: Counter = Counter()  # (subscription, Topic) -> pushes accepted
        # While held, pushes are accepted and then not answered until release(): a test can kill a
        # sender whose pushes provably reached the service.
        self._answering = threading.Event()
        self._answering.set()
        self.in_flight = 0
        self._server = LocalServer(self._wsgi)
        self.url = self._server.url

    def start(self) -> FakePushService:
        self._server.start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.stop()

    # --- the browser's side ---

    def new_subscription(self) -> dict:
        name = uuid.uuid4().hex
        key, auth = ec.generate_private_key(ec.SECP256R1()), uuid.uuid4().bytes
        self._keys[name] = (key, auth)
        point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {
            "endpoint": f"{self.url}/push/{name}",
            "expirationTime": None,
            "keys": {"p256dh": b64url(point), "auth": b64url(auth)},
        }

    def respond(self, subscription: dict, status: int, *, times: int = 1, headers: dict | None = None) -> None:
        name = subscription["endpoint"].rsplit("/", 1)[1]
        with self._lock:
            self._answers.setdefault(name, []).extend(Answer(status, headers or {}) for _ in range(times))

    def delivered_to(self, subscription: dict) -> list[Delivery]:
        name = subscription["endpoint"].rsplit("/", 1)[1]
        return [d for d in self.deliveries if d.subscription == name]

    def hold(self) -> None:
        self._answering.clear()

    def release(self) -> None:
        self._answering.set()

    def shown(self) -> Counter:
        """Subscription -> notifications its browser shows once online: one per distinct Topic
        (a push without a Topic is never replaced)."""
        with self._lock:
            return Counter(name for name, _ in self.topics)

    # --- the service ---

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        try:
            response = self._handle(request)
        except AssertionError as exc:
            self.refusals.append(str(exc))
            response = Response(str(exc), status=400)
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        match = _PATH.match(request.path)
        assert request.method == "POST" and match and match[1] in self._keys, f"no such subscription {request.path}"
        name = match[1]
        claims = self._check_vapid(request)
        assert request.headers.get("TTL", "").isdigit(), "TTL header missing"
        assert request.headers.get("Urgency") in ("very-low", "low", "normal", "high"), "Urgency header missing"
        assert request.headers.get("Content-Encoding") == "aes128gcm", "payload must be aes128gcm"
        body = request.get_data()
        assert 0 < len(body) <= 4096, f"a push message record is at most 4096 bytes, got {len(body)}"
        key, auth = self._keys[name]
        plaintext = http_ece.decrypt(body, private_key=key, auth_secret=auth, version="aes128gcm")
        with self._lock:
            answers = self._answers.get(name)
            answer = answers.pop(0) if answers else Answer(201, {"Location": f"{self.url}/m/{uuid.uuid4().hex}"})
            if answer.status == 201:
                self.deliveries.append(Delivery(name, plaintext, claims, dict(request.headers)))
                self.topics[(name, request.headers.get("Topic") or uuid.uuid4().hex)] += 1
            held = not self._answering.is_set()
            self.in_flight += held
        if held:
            self._answering.wait()
            with self._lock:
                self.in_flight -= 1
        return Response(status=answer.status, headers=answer.headers)

    def _check_vapid(self, request: Request) -> dict:
        scheme, _, params = request.headers.get("Authorization", "").partition(" ")
        assert scheme.lower() == "vapid", "Authorization must use the vapid scheme (RFC 8292)"
        fields = dict(part.strip().split("=", 1) for part in params.split(","))
        token, k = fields["t"], fields["k"]
        if self.vapid_public_key is not None:
            assert k == self.vapid_public_key, "signed with a key other than the server's"
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(k))
        claims = jwt.decode(
            token, public, algorithms=["ES256"], audience=self.url, options={"require": ["exp", "sub", "aud"]}
        )
        assert claims["exp"] <= time.time() + 24 * 3600, "exp more than 24 hours ahead"
        assert re.match(r"^(mailto:[^@\s]+@[^@\s]+|https://\S+)$", claims["sub"]), f"bad sub {claims['sub']!r}"
        return claims
