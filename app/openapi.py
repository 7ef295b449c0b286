"""The API's OpenAPI document, /api/v1/openapi.json, and its readable reference, /docs."""

import secrets
from weakref import WeakKeyDictionary

from flask import Blueprint, Flask, current_app, jsonify, make_response, render_template, url_for

from app.api import openapi_document

bp = Blueprint("openapi", __name__)
# Built once per app (its routes do not change while it runs), and gone with it.
_documents: WeakKeyDictionary[Flask, dict] = WeakKeyDictionary()


@bp.get("/api/v1/openapi.json")
def openapi_json():
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app not in _documents:
        _documents[app] = openapi_document(app)
    return jsonify(_documents[app])


# The one <style> the vendored Redoc 2.5.4 inserts before it can be given a nonce: perfect-scrollbar's
# stylesheet, added as the bundle loads (empty first, then filled, so both texts are checked).
# Their sha256, as Chromium reports them; a new Redoc needs them again (see static/vendor/README.md).
REDOC_STYLE_HASHES = (
    "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",  # the empty element
    "sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc=",  # perfect-scrollbar 1.5.3's CSS
)


def docs_policy(style_nonce: str) -> str:
    """The pages' policy (app.web.views) and what the vendored Redoc needs besides, no more.

    Its styled-components write <style> elements: allowed by this response's nonce, which Redoc
    is given, and the one stylesheet inserted before that by its hash, so no other inline style
    is. Its search index runs in a worker made from a blob: URL. Scripts, the document and images
    stay 'self' (and data: images), as on every page: nothing is loaded from elsewhere."""
    hashes = " ".join(f"'{value}'" for value in REDOC_STYLE_HASHES)
    return (
        "default-src 'self'; img-src 'self' data:; "
        f"style-src 'self' 'nonce-{style_nonce}' {hashes}; worker-src blob:; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


@bp.get("/docs")
def docs():
    """The API reference: Redoc, served from static/vendor, reading /api/v1/openapi.json."""
    style_nonce = secrets.token_urlsafe(16)
    response = make_response(
        render_template("docs.html", spec_url=url_for("openapi.openapi_json"), style_nonce=style_nonce)
    )
    response.headers["Content-Security-Policy"] = docs_policy(style_nonce)
    return response
