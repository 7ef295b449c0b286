"""Pass delivery and the PassKit web service (Apple's protocol, so not under /api/v1).

    GET    /wallet/apple/<card token>.pkpass                          "Add to Apple Wallet"
    POST   /passkit/v1/devices/<device>/registrations/<type>/<serial>  register (201 new, 200 known)
    DELETE /passkit/v1/devices/<device>/registrations/<type>/<serial>  unregister (200)
    GET    /passkit/v1/devices/<device>/registrations/<type>?passesUpdatedSince=<tag>  (200, 204)
    GET    /passkit/v1/passes/<type>/<serial>                          latest pass (200, 304)
    POST   /passkit/v1/log                                             device-side errors (200)

Status codes are Apple's; errors still carry problem+json bodies.
"""

from __future__ import annotations

import logging
import threading

from flask import Blueprint, Response, jsonify, request

from app.api import parse_body, transactional
from app.errors import problem_response
from app.extensions import EXTENSION, get_session, get_settings, limiter
from app.loyalty.service import card_by_access_token
from app.wallet.apple import schemas, service
from app.wallet.apple.config import AppleWalletSettings
from app.wallet.apple.models import ApplePass
from app.wallet.apple.package import MEDIA_TYPE
from app.wallet.apple.signing import CredentialsInvalid, CredentialsMissing, load_credentials

log = logging.getLogger(__name__)
device_log = logging.getLogger("pointcard.passkit.device")

bp = Blueprint("apple_wallet", __name__)
PASSKIT = "/passkit/v1"
_DEVICE = "<string(maxlength=128):device_library_id>"


def web_service_url() -> str:
    """What passes carry as webServiceURL; the device appends /v1/..."""
    return get_settings().public_base_url.rstrip("/") + "/passkit"


class _NotModified(Response):
    """A 304 that keeps Last-Modified, which werkzeug drops from 304s as an entity header."""

    def get_wsgi_headers(self, environ):
        headers = super().get_wsgi_headers(environ)
        headers["Last-Modified"] = self.headers["Last-Modified"]
        return headers


def _pass_response(apple_pass: ApplePass) -> Response:
    modified = service.last_modified(apple_pass)
    since = request.if_modified_since
    response: Response
    if since is not None and modified <= since:
        response = _NotModified(status=304)
    else:
        data = service.build_pass(
            session=get_session(),
            apple_pass=apple_pass,
            settings=get_settings().apple,
            web_service_url=web_service_url(),
        )
        response = Response(data, mimetype=MEDIA_TYPE)
    response.last_modified = modified
    # The pass carries its own secret: no shared cache may keep it.
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def _authenticated(pass_type_id: str, serial_number: str) -> ApplePass:
    return service.authenticated_pass(
        session=get_session(),
        settings=get_settings().apple,
        pass_type_id=pass_type_id,
        serial_number=serial_number,
        authorization=request.headers.get("Authorization"),
    )


@bp.get("/wallet/apple/<card_token>.pkpass")
@transactional
def download_pass(card_token: str) -> Response:
    """The customer's pass, issued on the first download."""
    card = card_by_access_token(session=get_session(), access_token=card_token)
    return _pass_response(service.issue_pass(session=get_session(), card=card))


@bp.post(f"{PASSKIT}/devices/{_DEVICE}/registrations/<pass_type_id>/<serial_number>")
@transactional
def register_device(device_library_id: str, pass_type_id: str, serial_number: str) -> Response:
    apple_pass = _authenticated(pass_type_id, serial_number)
    body = parse_body(schemas.DeviceRegistration)
    created = service.register_device(
        session=get_session(), apple_pass=apple_pass, device_library_id=device_library_id, push_token=body.pushToken
    )
    return Response(status=201 if created else 200)


@bp.delete(f"{PASSKIT}/devices/{_DEVICE}/registrations/<pass_type_id>/<serial_number>")
@transactional
def unregister_device(device_library_id: str, pass_type_id: str, serial_number: str) -> Response:
    apple_pass = _authenticated(pass_type_id, serial_number)
    service.unregister_device(session=get_session(), apple_pass=apple_pass, device_library_id=device_library_id)
    return Response(status=200)


@bp.get(f"{PASSKIT}/devices/{_DEVICE}/registrations/<pass_type_id>")
@transactional
def updated_serials(device_library_id: str, pass_type_id: str) -> Response:
    """No Authorization here: Apple's protocol lets the device library id stand for the device."""
    found = service.updated_serials(
        session=get_session(),
        settings=get_settings().apple,
        device_library_id=device_library_id,
        pass_type_id=pass_type_id,
        since=request.args.get("passesUpdatedSince"),
    )
    if found is None:
        return Response(status=204)
    return jsonify(serialNumbers=found.serial_numbers, lastUpdated=found.last_updated)


@bp.get(f"{PASSKIT}/passes/<pass_type_id>/<serial_number>")
@transactional
def latest_pass(pass_type_id: str, serial_number: str) -> Response:
    return _pass_response(_authenticated(pass_type_id, serial_number))


@bp.post(f"{PASSKIT}/log")
@limiter.limit("30 per minute")  # unauthenticated by Apple's design: keep it from flooding the logs
def device_logs() -> Response:
    for line in parse_body(schemas.DeviceLog).logs:
        device_log.warning("%s", line[:1000])
    return Response(status=200)


@bp.errorhandler(service.PassAuthenticationFailed)
def _wrong_pass_token(exc: service.PassAuthenticationFailed) -> Response:
    return problem_response(
        exc.status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        headers={"WWW-Authenticate": 'ApplePass realm="passkit"'},
    )


@bp.record_once
def _announce_credentials(state) -> None:
    """Check the credentials at start (errors are logged at once); the warning that development
    certificates will not open on a real iPhone comes once, at the first request a server answers,
    not on every `flask` command."""
    app, settings = state.app, state.app.extensions[EXTENSION].settings.apple
    credentials = _checked_credentials(settings)
    if credentials is None or not credentials.is_development:
        return
    warned = threading.Event()

    @app.before_request
    def _warn_once() -> None:
        if not warned.is_set():
            warned.set()
            log.warning("!" * 78)
            log.warning("Apple Wallet: signing passes with DEVELOPMENT certificates from %s.", settings.certs_dir)
            log.warning("Wallet on a real iPhone will refuse them; see certs.example/README.md for real ones.")
            log.warning("!" * 78)


def _checked_credentials(settings: AppleWalletSettings):
    try:
        return load_credentials(settings)
    except CredentialsMissing as exc:
        log.info("Apple Wallet passes are off until credentials exist: %s", exc)
    except CredentialsInvalid as exc:
        log.error("Apple Wallet credentials are unusable, passes will fail: %s", exc)
    return None
