"""The Google Wallet REST API (walletobjects v1) behind one small Protocol.

`RestWalletApi` calls Google with an OAuth2 token from the service account (google-auth);
`ConsoleWalletApi` logs what it would send, for `make run` with throwaway credentials.
Failures are the outbox's own: `GoogleUnavailable` (429, 5xx, network) is retried with
backoff, `GoogleRefused` (any other refusal) is not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Protocol
from urllib.parse import quote

import requests
from google.auth.exceptions import GoogleAuthError
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

from app.messaging.providers import RetryLater, Undeliverable
from app.wallet.google.credentials import ServiceAccount

log = logging.getLogger("pointcard.google_wallet")

SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"


class GoogleUnavailable(RetryLater):
    """Google is busy, failing or out of reach: try again later."""


class GoogleRefused(Undeliverable):
    """Google refused the request; sending it again cannot help."""


class NotInGoogle(Exception):
    """404: the class or object does not exist there (yet)."""


class AlreadyInGoogle(Exception):
    """409: an insert of something that exists."""


# When the current send must be over (its outbox lease): each call gets only the time left.
_deadline: ContextVar[float | None] = ContextVar("google_wallet_deadline", default=None)


@contextmanager
def deadline(at: datetime | None) -> Iterator[None]:
    token = _deadline.set(at.timestamp() if at is not None else None)
    try:
        yield
    finally:
        _deadline.reset(token)


class WalletApi(Protocol):
    def insert_class(self, payload: dict) -> dict: ...
    def get_class(self, class_id: str) -> dict: ...
    def patch_class(self, class_id: str, payload: dict) -> dict: ...
    def insert_object(self, payload: dict) -> dict: ...
    def get_object(self, object_id: str) -> dict: ...
    def patch_object(self, object_id: str, payload: dict) -> dict: ...
    def add_message(self, object_id: str, message: dict) -> dict: ...


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None  # absent, or an HTTP date: the outbox's own backoff applies


def _error_text(response: requests.Response) -> str:
    try:
        error = response.json().get("error", {})
        return f"{response.status_code} {error.get('status', '')} {error.get('message', '')}".strip()
    except (ValueError, AttributeError):
        return f"{response.status_code} {response.text[:200]}"


def _raise_for(response: requests.Response) -> None:
    status = response.status_code
    if status < 300:
        return
    if status == 404:
        raise NotInGoogle(_error_text(response))
    if status == 409:
        raise AlreadyInGoogle(_error_text(response))
    if status == 429 or status >= 500:
        raise GoogleUnavailable(_error_text(response), retry_after=_retry_after(response))
    raise GoogleRefused(_error_text(response))


class RestWalletApi:
    def __init__(self, *, base_url: str, account: ServiceAccount, timeout: float) -> None:
        # token_uri comes from the key file: Google's in production, a local fake in tests.
        credentials = service_account.Credentials.from_service_account_info(account.info, scopes=[SCOPE])
        self.session = AuthorizedSession(credentials)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _time_left(self) -> float:
        at = _deadline.get()
        if at is None:
            return self.timeout
        left = at - time.time()
        if left < 1:
            raise GoogleUnavailable("no time left before this send's lease runs out")
        return min(self.timeout, left)

    def _call(self, method: str, path: str, payload: dict | None = None) -> dict:
        url, timeout = f"{self.base_url}/{path}", self._time_left()
        try:
            # max_allowed_time bounds the token refresh too, not only this request.
            response = self.session.request(method, url, json=payload, timeout=timeout, max_allowed_time=timeout)
        except (requests.RequestException, GoogleAuthError) as exc:
            raise GoogleUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        _raise_for(response)
        return response.json() if response.content else {}

    def insert_class(self, payload: dict) -> dict:
        return self._call("POST", "loyaltyClass", payload)

    def get_class(self, class_id: str) -> dict:
        return self._call("GET", f"loyaltyClass/{quote(class_id)}")

    def patch_class(self, class_id: str, payload: dict) -> dict:
        return self._call("PATCH", f"loyaltyClass/{quote(class_id)}", payload)

    def insert_object(self, payload: dict) -> dict:
        return self._call("POST", "loyaltyObject", payload)

    def get_object(self, object_id: str) -> dict:
        return self._call("GET", f"loyaltyObject/{quote(object_id)}")

    def patch_object(self, object_id: str, payload: dict) -> dict:
        # PATCH, never PUT: an update clears every field it does not name.
        return self._call("PATCH", f"loyaltyObject/{quote(object_id)}", payload)

    def add_message(self, object_id: str, message: dict) -> dict:
        return self._call("POST", f"loyaltyObject/{quote(object_id)}/addMessage", {"message": message})


class ConsoleWalletApi:
    """For `make run`: logs each call and answers as if Google had accepted it."""

    def _log(self, call: str, target: str, payload: dict | None = None) -> dict:
        log.info("[google wallet console] %s %s %s", call, target, payload if payload is not None else "")
        return dict(payload or {"id": target})

    def insert_class(self, payload: dict) -> dict:
        return self._log("insert class", payload["id"], payload)

    def get_class(self, class_id: str) -> dict:
        return self._log("get class", class_id)

    def patch_class(self, class_id: str, payload: dict) -> dict:
        return self._log("patch class", class_id, payload)

    def insert_object(self, payload: dict) -> dict:
        return self._log("insert object", payload["id"], payload)

    def get_object(self, object_id: str) -> dict:
        return self._log("get object", object_id)

    def patch_object(self, object_id: str, payload: dict) -> dict:
        return self._log("patch object", object_id, payload)

    def add_message(self, object_id: str, message: dict) -> dict:
        return {"resource": self._log("add message to", object_id, message)}


def _upsert(insert: Callable[[], dict], patch: Callable[[], dict], *, exists: bool) -> dict:
    """Patch what should exist (404: insert it); insert what should not (409: patch it)."""
    if exists:
        try:
            return patch()
        except NotInGoogle:
            return insert()
    try:
        return insert()
    except AlreadyInGoogle:
        return patch()


def upsert_class(api: WalletApi, payload: dict, *, exists: bool) -> dict:
    return _upsert(lambda: api.insert_class(payload), lambda: api.patch_class(payload["id"], payload), exists=exists)


def upsert_object(api: WalletApi, payload: dict, *, exists: bool) -> dict:
    return _upsert(lambda: api.insert_object(payload), lambda: api.patch_object(payload["id"], payload), exists=exists)
