from flask import Blueprint, current_app, jsonify

from app.api import openapi_document

bp = Blueprint("openapi", __name__)


@bp.get("/api/v1/openapi.json")
def openapi_json():
    document = current_app.extensions.get("openapi")
    if document is None:
        document = current_app.extensions["openapi"] = openapi_document(current_app)
    return jsonify(document)
