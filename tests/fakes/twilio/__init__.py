"""A local Twilio REST API (2010-04-01) checked against Twilio's own OpenAPI description.

Every request the real `twilio` SDK sends here is validated with openapi-core against Twilio's
own description, twilio_api_v2010.json beside this file (its origin: README.md), and so is every
answer the fake gives. The fake is stricter than openapi-core on one point: a form field the
description does not name is an error too (openapi-core decodes only the named ones, so it
cannot see them). The fake creates Messages and Calls, updates Calls, checks HTTP basic auth,
and answers scripted errors (`fail_next(status, code)`, e.g. 400 / 21610, or 429 with
Retry-After).

`sign(url, params)` computes X-Twilio-Signature as Twilio does, to call the app's webhooks.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from twilio.request_validator import RequestValidator
from werkzeug.wrappers import Request, Response

from tests.fakes import LocalServer

SPEC_PATH = Path(__file__).resolve().parent / "twilio_api_v2010.json"
TWILIO_HOST_URL = "https://api.twilio.com"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
MESSAGING_SERVICE_SID = "MG" + "fedcba9876543210" * 2
VOICE_FROM = "+15005550006"

_ROUTES = (
    (re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json$"), "message"),
    (re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Calls\.json$"), "call"),
    (re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Calls/(CA[0-9a-f]{32})\.json$"), "call_update"),
)
_TEMPLATES = {
    "message": "/2010-04-01/Accounts/{AccountSid}/Messages.json",
    "call": "/2010-04-01/Accounts/{AccountSid}/Calls.json",
    "call_update": "/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json",
}


@functools.cache
def twilio_openapi() -> tuple[OpenAPI, dict]:
    """Twilio's description, loaded once per test run."""
    spec = json.loads(SPEC_PATH.read_text())
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None)), spec


@dataclass
class Call:
    """One request the fake received: path kind, form fields (all values), and what it answered."""

    kind: str
    path: str
    form: dict[str, list[str]]
    status: int

    def field(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None


@dataclass
class Failure:
    status: int
    code: int
    message: str
    headers: dict = field(default_factory=dict)


class FakeTwilio:
    def __init__(self, *, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid, self.auth_token = account_sid, auth_token
        self.openapi, self.spec = twilio_openapi()
        self.requests: list[Call] = []
        self.violations: list[str] = []
        self._failures: list[Failure] = []
        self._lock = threading.Lock()
        self._server = LocalServer(self._wsgi)
        self.url = self._server.url

    def start(self) -> FakeTwilio:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.violations.clear()
            self._failures.clear()

    def fail_next(self, status: int, code: int, message: str = "scripted failure", headers: dict | None = None) -> None:
        with self._lock:
            self._failures.append(Failure(status, code, message, headers or {}))

    def of_kind(self, kind: str) -> list[Call]:
        return [r for r in self.requests if r.kind == kind]

    def sign(self, url: str, params: dict) -> str:
        return RequestValidator(self.auth_token).compute_signature(url, params)

    # --- the server ---

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        response = self._handle(request)
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        kind, groups = self._route(request.path)
        body = request.get_data()
        openapi_request = MockRequest(
            TWILIO_HOST_URL,
            request.method,
            request.path,
            headers=dict(request.headers),
            data=body,
            content_type=request.content_type or "",
        )
        problems = self._validate_request(openapi_request, kind) if kind else [f"unknown path {request.path}"]
        if not problems and not self._authorized(request, groups):
            return self._error(401, 20003, "Authenticate", request, kind)
        if problems:
            self.violations.extend(problems)
            return self._error(400, 21601, "; ".join(problems), request, kind)
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return self._error(failure.status, failure.code, failure.message, request, kind, failure.headers)
        form = parse_qs(body.decode(), keep_blank_values=True)
        status, payload = self._answer(kind, groups, form)
        self._validate_response(openapi_request, status, payload)
        self._record(kind, request.path, form, status)
        return Response(json.dumps(payload), status=status, mimetype="application/json")

    def _route(self, path: str) -> tuple[str | None, tuple]:
        for pattern, kind in _ROUTES:
            match = pattern.match(path)
            if match:
                return kind, match.groups()
        return None, ()

    def _authorized(self, request: Request, groups: tuple) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}" and groups[0] == self.account_sid

    def _validate_request(self, openapi_request: MockRequest, kind: str) -> list[str]:
        try:
            self.openapi.validate_request(openapi_request)
        except Exception as exc:  # openapi-core raises a family of errors; each is a violation
            return [f"request: {exc!r}: {exc.__cause__!r}"]
        operation = self.spec["paths"][_TEMPLATES[kind]]["post"]
        named = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["properties"]
        unknown = set(parse_qs(openapi_request.body.decode(), keep_blank_values=True)) - set(named)
        return [f"request: fields the description does not name: {sorted(unknown)}"] if unknown else []

    def _validate_response(self, openapi_request: MockRequest, status: int, payload: dict) -> None:
        try:
            self.openapi.validate_response(openapi_request, MockResponse(json.dumps(payload).encode(), status))
        except Exception as exc:
            self.violations.append(f"response: {exc!r}: {exc.__cause__!r}")

    def _record(self, kind: str | None, path: str, form: dict, status: int) -> None:
        with self._lock:
            self.requests.append(Call(kind or "unknown", path, form, status))

    def _error(
        self, status: int, code: int, message: str, request: Request, kind: str | None, headers: dict | None = None
    ) -> Response:
        self._record(kind, request.path, parse_qs(request.get_data().decode(), keep_blank_values=True), status)
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers or {})

    # --- resources, shaped like the description's own examples ---

    def _example(self, path: str, status: str) -> dict:
        examples = self.spec["paths"][path]["post"]["responses"][status]["content"]["application/json"]["examples"]
        return copy.deepcopy(next(iter(examples.values()))["value"])

    def _answer(self, kind: str, groups: tuple, form: dict) -> tuple[int, dict]:
        one = {key: values[0] for key, values in form.items()}
        if kind == "message":
            sid = "SM" + uuid.uuid4().hex
            payload = self._example("/2010-04-01/Accounts/{AccountSid}/Messages.json", "201")
            payload.update(
                sid=sid,
                account_sid=self.account_sid,
                to=one["To"],
                body=one.get("Body", ""),
                status="accepted" if "MessagingServiceSid" in one else "queued",
                messaging_service_sid=one.get("MessagingServiceSid"),
                **{"from": one.get("From")},
                uri=f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            )
            return 201, payload
        if kind == "call":
            sid = "CA" + uuid.uuid4().hex
            payload = self._example("/2010-04-01/Accounts/{AccountSid}/Calls.json", "201")
            payload.update(
                sid=sid,
                account_sid=self.account_sid,
                to=one["To"],
                status="queued",
                direction="outbound-api",
                **{"from": one["From"]},
                uri=f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json",
            )
            return 201, payload
        payload = self._example("/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json", "200")
        payload.update(
            sid=groups[1],
            account_sid=self.account_sid,
            status="in-progress",
            uri=f"/2010-04-01/Accounts/{self.account_sid}/Calls/{groups[1]}.json",
        )
        return 200, payload
