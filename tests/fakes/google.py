"""Google, played locally on 127.0.0.1: the OAuth2 token endpoint, the Wallet REST API
(walletobjects v1), the "save to wallet" page and the callback signing keys.

It is strict where Google is: the token endpoint checks the service account's JWT-bearer
assertion (RS256, its key id, the wallet_object.issuer scope) and the API accepts only the
tokens it handed out; every class, object and message is checked against Google's published
schema; inserting an existing resource is a 409, patching a missing one a 404; an approved
class is only updated with reviewStatus UNDER_REVIEW. Callbacks are signed ECv2SigningOnly
with root keys made here, the way Google signs them (Tink's format), written independently
of the app's verifier so the two check each other.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.fakes.walletobjects import schema_errors

SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
# The audience of a service account's grant assertion is always Google's token endpoint,
# whichever token_uri it is posted to (google-auth's and Google's rule).
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
PROTOCOL = "ECv2SigningOnly"
ISSUER_ID = "3388000000022001234"
CLIENT_EMAIL = "wallet-tests@pointcard-tests.iam.gserviceaccount.com"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _lv(*parts: str) -> bytes:
    """Tink's toLengthValue: each part as a 4-byte little-endian length, then its UTF-8 bytes."""
    out = b""
    for part in parts:
        data = part.encode("utf-8")
        out += len(data).to_bytes(4, byteorder="little") + data
    return out


def _ms(seconds_from_now: float) -> int:
    return int((time.time() + seconds_from_now) * 1000)


def _spki(private_key: ec.EllipticCurvePrivateKey) -> str:
    return _b64(
        private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


@dataclass
class Call:
    method: str
    path: str
    body: Any
    status: int
    token: str | None


@dataclass
class Failure:
    method: str
    path_prefix: str
    status: int
    headers: dict
    times: int


@dataclass
class ServiceAccountKey:
    private_key: rsa.RSAPrivateKey
    key_id: str = field(default_factory=lambda: secrets.token_hex(20))

    @property
    def public_key(self):
        return self.private_key.public_key()

    def info(self, token_uri: str) -> dict:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": "pointcard-tests",
            "private_key_id": self.key_id,
            "private_key": pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "123456789012345678901",
            "token_uri": token_uri,
        }


class FakeGoogle:
    def __init__(self, account: ServiceAccountKey, issuer_id: str = ISSUER_ID) -> None:
        self.account, self.issuer_id = account, issuer_id
        self.classes: dict[str, dict] = {}
        self.objects: dict[str, dict] = {}
        self.calls: list[Call] = []
        self.tokens: list[str] = []
        self.token_requests = 0
        self.key_fetches = 0
        self.callback_results: list[tuple[int, dict]] = []
        # Off when the app is not served over HTTP: tests then post the callbacks themselves.
        self.deliver_callbacks = True
        # Run at the start of every REST call: what happens elsewhere while Google is busy.
        self.while_called: Callable[[], None] | None = None
        self.failures: list[Failure] = []
        self.root_keys = [ec.generate_private_key(ec.SECP256R1())]
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self._lock = threading.RLock()
        self._routes = Map(
            [
                Rule("/token", endpoint="token", methods=["POST"]),
                Rule("/keys", endpoint="keys", methods=["GET"]),
                Rule("/gp/v/save/<token>", endpoint="save", methods=["GET"]),
                Rule("/walletobjects/v1/<kind>", endpoint="insert", methods=["POST"]),
                Rule("/walletobjects/v1/<kind>/<resource_id>", endpoint="resource", methods=["GET", "PATCH", "PUT"]),
                Rule("/walletobjects/v1/<kind>/<resource_id>/addMessage", endpoint="add_message", methods=["POST"]),
            ]
        )
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        # A short poll: shutdown() waits for it (serve_forever's default, 0.5 s, was a test's teardown).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # --- lifecycle and settings ---

    def start(self) -> FakeGoogle:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def write_credentials(self, certs_dir: Path) -> Path:
        certs_dir.mkdir(parents=True, exist_ok=True)
        (certs_dir / "service-account.json").write_text(json.dumps(self.account.info(self.token_url)))
        return certs_dir

    def settings(self, certs_dir: Path, **overrides) -> dict:
        values = {
            "issuer_id": self.issuer_id,
            "certs_dir": self.write_credentials(certs_dir),
            "api_base_url": f"{self.url}/walletobjects/v1",
            "save_url_base": f"{self.url}/gp/v/save/",
            "callback_keys_url": f"{self.url}/keys",
            "sender": "google",
            "http_timeout_seconds": 5,
        }
        values.update(overrides)
        return values

    # --- what tests script and inspect ---

    def fail_next(self, method: str, path_prefix: str, status: int, *, times: int = 1, **headers: str) -> None:
        with self._lock:
            self.failures.append(Failure(method, path_prefix, status, headers, times))

    def api_calls(self, method: str | None = None, kind: str | None = None) -> list[Call]:
        with self._lock:
            return [
                c
                for c in self.calls
                if (method is None or c.method == method)
                and (kind is None or c.path.startswith(f"/walletobjects/v1/{kind}"))
            ]

    # --- callbacks, signed the way Google signs them ---

    def signed_callback(
        self,
        *,
        object_id: str,
        class_id: str,
        event_type: str = "save",
        expires_in: float = 60,
        nonce: str | None = None,
        sender_id: str = "GooglePayPasses",
        recipient_id: str | None = None,
        root_key: ec.EllipticCurvePrivateKey | None = None,
        intermediate_expires_in: float = 3600,
    ) -> dict:
        message = json.dumps(
            {
                "classId": class_id,
                "objectId": object_id,
                "eventType": event_type,
                "expTimeMillis": _ms(expires_in),
                "count": 1,
                "nonce": nonce or str(uuid.uuid4()),
            }
        )
        signed_key = json.dumps(
            {"keyValue": _spki(self.intermediate_key), "keyExpiration": str(_ms(intermediate_expires_in))}
        )
        key_signature = (root_key or self.root_keys[0]).sign(
            _lv(sender_id, PROTOCOL, signed_key), ec.ECDSA(hashes.SHA256())
        )
        signature = self.intermediate_key.sign(
            _lv(sender_id, recipient_id or self.issuer_id, PROTOCOL, message), ec.ECDSA(hashes.SHA256())
        )
        return {
            "signature": _b64(signature),
            "intermediateSigningKey": {"signedKey": signed_key, "signatures": [_b64(key_signature)]},
            "protocolVersion": PROTOCOL,
            "signedMessage": message,
        }

    def _deliver_callback(self, obj: dict, event_type: str) -> None:
        url = self.classes.get(obj["classId"], {}).get("callbackOptions", {}).get("url")
        if not url or not self.deliver_callbacks:
            return
        body = self.signed_callback(object_id=obj["id"], class_id=obj["classId"], event_type=event_type)
        try:
            response = requests.post(url, json=body, timeout=10)
            self.callback_results.append((response.status_code, response.json()))
        except requests.RequestException as exc:
            self.callback_results.append((0, {"error": str(exc)}))

    def delete_from_wallet(self, object_id: str) -> None:
        self._deliver_callback(self.objects[object_id], "del")

    # --- the HTTP side ---

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, args = self._routes.bind_to_environ(environ).match()
            response = getattr(self, f"_{endpoint}")(request, **args)
        except Exception as exc:
            code = getattr(exc, "code", 500)
            response = _error(code if isinstance(code, int) else 500, str(exc))
        return response(environ, start_response)

    def _token(self, request: Request) -> Response:
        with self._lock:
            self.token_requests += 1
        if request.form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Response(json.dumps({"error": "unsupported_grant_type"}), 400, mimetype="application/json")
        assertion = request.form.get("assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self.account.public_key,
                algorithms=["RS256"],
                audience=GOOGLE_TOKEN_AUDIENCE,
                issuer=CLIENT_EMAIL,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            return Response(
                json.dumps({"error": "invalid_grant", "error_description": str(exc)}), 400, mimetype="application/json"
            )
        if header.get("kid") != self.account.key_id or SCOPE not in claims.get("scope", "").split():
            return Response(json.dumps({"error": "invalid_scope"}), 400, mimetype="application/json")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens.append(token)
        return Response(
            json.dumps({"access_token": token, "expires_in": 3600, "token_type": "Bearer"}), mimetype="application/json"
        )

    def _keys(self, request: Request) -> Response:
        with self._lock:
            self.key_fetches += 1
            keys = [
                {"keyValue": _spki(key), "protocolVersion": PROTOCOL, "keyExpiration": str(_ms(86400))}
                for key in self.root_keys
            ]
        return Response(
            json.dumps({"keys": keys}), mimetype="application/json", headers={"Cache-Control": "public, max-age=3600"}
        )

    def _api(self, request: Request, handler, *args) -> Response:
        """Authenticate, record, maybe fail as scripted, then handle."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        body = request.get_json(silent=True)
        if self.while_called is not None:
            self.while_called()
        with self._lock:
            if scheme != "Bearer" or token not in self.tokens:
                response = _error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
            elif (failure := self._scripted_failure(request)) is not None:
                response = _error(failure.status, "scripted failure", headers=failure.headers)
            else:
                response = handler(body, *args)
            self.calls.append(Call(request.method, request.path, body, response.status_code, token or None))
        return response

    def _scripted_failure(self, request: Request) -> Failure | None:
        for failure in self.failures:
            if failure.method == request.method and request.path.startswith(failure.path_prefix):
                failure.times -= 1
                if failure.times <= 0:
                    self.failures.remove(failure)
                return failure
        return None

    def _insert(self, request: Request, kind: str) -> Response:
        return self._api(request, self._do_insert, kind)

    def _resource(self, request: Request, kind: str, resource_id: str) -> Response:
        handler = {"GET": self._do_get, "PATCH": self._do_patch, "PUT": self._do_put}[request.method]
        return self._api(request, handler, kind, resource_id)

    def _add_message(self, request: Request, kind: str, resource_id: str) -> Response:
        return self._api(request, self._do_add_message, kind, resource_id)

    def _store(self, kind: str) -> tuple[dict, str]:
        return {"loyaltyClass": (self.classes, "LoyaltyClass"), "loyaltyObject": (self.objects, "LoyaltyObject")}[kind]

    def _do_insert(self, body: dict, kind: str) -> Response:
        store, schema = self._store(kind)
        invalid = self._invalid(body, schema)
        if invalid is not None:
            return invalid
        if body["id"] in store:
            return _error(409, f"Resource {body['id']} already exists.", "ALREADY_EXISTS")
        if kind == "loyaltyObject" and body["classId"] not in self.classes:
            return _error(400, f"Class {body['classId']} does not exist.", "INVALID_ARGUMENT")
        store[body["id"]] = self._accepted(kind, dict(body))
        return _json(store[body["id"]])

    def _do_get(self, body, kind: str, resource_id: str) -> Response:
        store, _ = self._store(kind)
        if resource_id not in store:
            return _error(404, f"Resource {resource_id} not found.", "NOT_FOUND")
        return _json(store[resource_id])

    def _do_patch(self, body: dict, kind: str, resource_id: str) -> Response:
        store, schema = self._store(kind)
        if resource_id not in store:
            return _error(404, f"Resource {resource_id} not found.", "NOT_FOUND")
        invalid = self._invalid(body, schema)
        if invalid is not None:
            return invalid
        if (
            kind == "loyaltyClass"
            and store[resource_id].get("reviewStatus") == "APPROVED"
            and body.get("reviewStatus") != "UNDER_REVIEW"
        ):
            return _error(400, "An approved class is updated with reviewStatus UNDER_REVIEW.", "INVALID_ARGUMENT")
        store[resource_id] = self._accepted(kind, {**store[resource_id], **body})  # named fields replaced whole
        return _json(store[resource_id])

    def _do_put(self, body, kind: str, resource_id: str) -> Response:
        return _error(400, "this fake refuses PUT: it clears every field it does not name", "INVALID_ARGUMENT")

    def _do_add_message(self, body: dict, kind: str, resource_id: str) -> Response:
        invalid = self._invalid(body, "AddMessageRequest")
        if invalid is not None:
            return invalid
        if resource_id not in self.objects:
            return _error(404, f"Resource {resource_id} not found.", "NOT_FOUND")
        self.objects[resource_id].setdefault("messages", []).append(body["message"])
        return _json({"resource": self.objects[resource_id]})

    def _accepted(self, kind: str, resource: dict) -> dict:
        resource.pop("notifyPreference", None)  # ephemeral: applies to this request only
        if kind == "loyaltyClass":
            resource["reviewStatus"] = "APPROVED"  # Google approves loyalty classes on its own
        return resource

    @staticmethod
    def _invalid(body: Any, schema: str) -> Response | None:
        errors = schema_errors(body, schema)
        return _error(400, "; ".join(errors), "INVALID_ARGUMENT") if errors else None

    def _save(self, request: Request, token: str) -> Response:
        """The page a customer's browser opens: verify the link, create what it carries, call back."""
        try:
            claims = jwt.decode(
                token, self.account.public_key, algorithms=["RS256"], audience="google", issuer=CLIENT_EMAIL
            )
        except jwt.PyJWTError as exc:
            return Response(f"invalid save link: {exc}", 400)
        if claims.get("typ") != "savetowallet":
            return Response("not a save link", 400)
        with self._lock:
            saved = self._save_payload(claims["payload"])
        if isinstance(saved, Response):
            return saved
        for obj in saved:
            self._deliver_callback(obj, "save")
        return Response("<p>Saved to Google Wallet</p>", mimetype="text/html")

    def _save_payload(self, payload: dict) -> list[dict] | Response:
        for cls in payload.get("loyaltyClasses", []):
            if cls["id"] not in self.classes:
                invalid = self._invalid(cls, "LoyaltyClass")
                if invalid is not None:
                    return invalid
                self.classes[cls["id"]] = self._accepted("loyaltyClass", dict(cls))
        saved = []
        for obj in payload.get("loyaltyObjects", []):
            if obj["id"] not in self.objects:
                if set(obj) <= {"id", "classId"}:
                    return Response(f"object {obj['id']} does not exist", 404)
                invalid = self._invalid(obj, "LoyaltyObject")
                if invalid is not None:
                    return invalid
                if obj["classId"] not in self.classes:
                    return Response(f"class {obj['classId']} does not exist", 400)
                self.objects[obj["id"]] = self._accepted("loyaltyObject", dict(obj))
            saved.append(self.objects[obj["id"]])
        return saved


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status, mimetype="application/json")


def _error(status: int, message: str, reason: str = "", headers: dict | None = None) -> Response:
    body = {"error": {"code": status, "message": message, "status": reason}}
    return Response(json.dumps(body), status, mimetype="application/json", headers=headers or {})
