from weakref import WeakKeyDictionary

from flask import Blueprint, Flask, current_app, jsonify

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
