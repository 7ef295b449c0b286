"""Which URLs an endpoint may have, and which addresses the worker may connect to.

An admin's URL makes the worker send a POST from inside our network, so (unless the settings
allow it) an endpoint must be https on a public address. The check runs at registration for a
quick answer, and again at every send on the addresses DNS gives then; the request then goes to
the checked address itself (the name only for TLS), so DNS answering differently between the
check and the connection (rebinding) cannot steer it inside.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.webhooks.config import WebhooksSettings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The URL or the addresses its host resolves to are not allowed."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL (the TLS name)
    port: int
    path: str  # path and query


def parse(url: str, settings: WebhooksSettings) -> Target:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if not host:
        raise AddressRefused("The URL needs a host, as in https://example.com/hooks/pointcard.")
    if parts.username or parts.password:
        raise AddressRefused("Put no credentials in the URL: receivers check the signature instead.")
    if parts.fragment:
        raise AddressRefused("A webhook URL has no #fragment.")
    try:
        port = parts.port
    except ValueError as exc:
        raise AddressRefused(f"The port is not valid: {exc}.") from exc
    if parts.scheme == "http" and settings.allow_http_localhost and _is_loopback_name(host):
        pass  # a receiver on the developer's own machine
    elif parts.scheme != "https":
        raise AddressRefused("A webhook URL must start with https://.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def _is_loopback_name(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def resolve(target: Target, settings: WebhooksSettings) -> Address:
    """The address to connect to: every address of the host must be allowed, not only the first."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise AddressRefused(f"{target.host} does not resolve: {exc}.") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    local_http = target.scheme == "http"  # parse() allowed it for a loopback name only
    refused = [
        a for a in addresses if not (is_public(a) or settings.allow_private_addresses or (local_http and a.is_loopback))
    ]
    if refused or not addresses:
        raise AddressRefused(
            f"{target.host} resolves to {refused[0] if refused else 'nothing'}, which is not a "
            "public address; webhooks go to the internet only."
        )
    return addresses[0]


def check(url: str, settings: WebhooksSettings) -> Target:
    target = parse(url, settings)
    resolve(target, settings)
    return target
