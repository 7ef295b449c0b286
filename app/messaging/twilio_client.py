"""The real twilio SDK, aimed at a configurable API base URL, and its errors in outbox terms.

The SDK builds every request itself (URL, form fields, auth); `RedirectingHttpClient` only
swaps https://api.twilio.com for the configured base just before the real requests-based
client sends it, so tests talk to a local server speaking Twilio's API.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit, urlunsplit

import phonenumbers
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from app.messaging.config import MessagingSettings
from app.messaging.models import Message
from app.messaging.providers import ConsoleSender, OptedOut, RetryLater, Sender, Undeliverable, parse_retry_after

if TYPE_CHECKING:
    from app.config import Settings

TWILIO_API_HOST = "api.twilio.com"
# https://www.twilio.com/docs/api/errors/21610: the recipient replied STOP to this sender.
OPTED_OUT = 21610
TOO_MANY_REQUESTS = 20429


class RedirectingHttpClient(TwilioHttpClient):
    def __init__(self, *, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base = urlsplit(base_url.rstrip("/"))
        self.last_retry_after: float | None = None

    def request(
        self, method, url, params=None, data=None, headers=None, auth=None, timeout=None, allow_redirects=False
    ):
        parts = urlsplit(url)
        if parts.hostname == TWILIO_API_HOST:
            url = urlunsplit((self.base.scheme, self.base.netloc, self.base.path + parts.path, parts.query, ""))
        response = super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        # The SDK's exception drops the headers; keep Retry-After for the outbox.
        self.last_retry_after = parse_retry_after((response.headers or {}).get("Retry-After"))
        return response


class TwilioClients:
    """One SDK client per thread: the outbox sends concurrently, a requests Session is not shared."""

    def __init__(self, settings: MessagingSettings) -> None:
        if not settings.twilio_account_sid or settings.twilio_auth_token is None:
            raise RuntimeError("Twilio needs POINTCARD_MESSAGING__TWILIO_ACCOUNT_SID and __TWILIO_AUTH_TOKEN")
        self.settings = settings
        self._local = threading.local()

    def get(self) -> Client:
        if not hasattr(self._local, "client"):
            http = RedirectingHttpClient(
                base_url=self.settings.twilio_api_base_url, timeout=self.settings.twilio_timeout_seconds
            )
            token = self.settings.twilio_auth_token
            assert token is not None  # make_twilio_sender builds this only when Twilio is configured
            self._local.client = Client(self.settings.twilio_account_sid, token.get_secret_value(), http_client=http)
        return self._local.client


def outbox_error(exc: Exception, client: Client) -> Exception:
    """A Twilio failure as the outbox understands it. The SDK itself never retries a 429."""
    if isinstance(exc, requests.RequestException):
        return RetryLater(f"Twilio unreachable: {exc}")
    if not isinstance(exc, TwilioRestException):
        return exc
    described = f"Twilio {exc.status} error {exc.code}: {exc.msg}"
    if exc.code == OPTED_OUT:
        return OptedOut(described)
    if exc.status == 429 or exc.code == TOO_MANY_REQUESTS or exc.status >= 500:
        return RetryLater(described, retry_after=getattr(client.http_client, "last_retry_after", None))
    return Undeliverable(described)


def e164(phone: str | None) -> str:
    """The recipient's number as Twilio wants it (+14155550123), or Undeliverable."""
    try:
        number = phonenumbers.parse(phone or "", None)
    except phonenumbers.NumberParseException as exc:
        raise Undeliverable(f"the customer's phone number {phone!r} is not an international number") from exc
    if not phonenumbers.is_valid_number(number):
        raise Undeliverable(f"the customer's phone number {phone!r} is not a valid number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def webhook_url(settings, path: str, **query) -> str:
    """A URL Twilio calls back: the configured public base, never what a proxy made of it."""
    base = (settings.messaging.webhook_base_url or settings.public_base_url).rstrip("/")
    return f"{base}{path}" + (f"?{urlencode(query)}" if query else "")


class TwilioSender:
    """What SMS and calls share: the setting they need, the recipient's number, the client, and
    Twilio's failures in outbox terms. A subclass says what it creates (`create`)."""

    required_setting = ""  # the MessagingSettings field this channel cannot work without

    def __init__(self, *, settings, clients: TwilioClients) -> None:
        self.settings, self.messaging, self.clients = settings, settings.messaging, clients
        if not getattr(self.messaging, self.required_setting):
            raise RuntimeError(f"{type(self).__name__} needs POINTCARD_MESSAGING__{self.required_setting.upper()}")

    def send(self, message: Message) -> str:
        if not (message.recipient and message.recipient.phone):
            raise Undeliverable("the customer has no phone number")
        phone = e164(message.recipient.phone)
        client = self.clients.get()
        try:
            return self.create(client, phone, message)
        except Exception as exc:
            raise outbox_error(exc, client) from exc

    def create(self, client: Client, phone: str, message: Message) -> str:
        raise NotImplementedError


def make_twilio_sender(
    settings: Settings, *, backend: str, real: type[TwilioSender], console: type[ConsoleSender]
) -> Sender:
    """The real sender when Twilio is configured (or asked for), else the console one."""
    messaging: MessagingSettings = settings.messaging
    configured = bool(messaging.twilio_account_sid and messaging.twilio_auth_token)
    if backend == "console" or (backend == "auto" and not configured):
        return console()
    return real(settings=settings, clients=TwilioClients(messaging))
