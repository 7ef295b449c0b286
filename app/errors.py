"""Every error the API returns is RFC 9457 application/problem+json, built here."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://pointcard.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """A domain error with the HTTP status it maps to. Subclasses name the kind of problem."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}  # response headers, such as Retry-After
        self.extra = extra


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict"


class Unprocessable(Problem):
    status, slug, title = 422, "unprocessable", "Unprocessable request"


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Not authenticated"


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Forbidden"


class TooManyRequests(Problem):
    status, slug, title = 429, "too-many-requests", "Too many requests"


def problem_response(
    status: int, *, slug: str, title: str, detail: str, headers: dict | None = None, **extra: Any
) -> Response:
    body = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path if request else None,
        **extra,
    }
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="pointcard"'
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as {field, message, type}: the field a dotted path into the body."""
    return [
        {
            "field": ".".join(str(part) for part in error["loc"]) or "(body)",
            "message": error["msg"],
            "type": error["type"],
        }
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def _http_slug(code: int) -> str:
    return HTTPStatus(code).phrase.lower().replace(" ", "-").replace("'", "")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem):
        return problem_response(
            exc.status,
            slug=exc.slug,
            title=exc.title,
            detail=exc.detail,
            headers=getattr(exc, "headers", None),
            **exc.extra,
        )

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError):
        errors = validation_errors(exc)
        fields = ", ".join(sorted({e["field"] for e in errors}))
        return problem_response(
            422,
            slug="validation-error",
            title="Invalid request",
            detail=f"The request has invalid fields: {fields}.",
            errors=errors,
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        code = exc.code or 500
        headers = {}
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
        if code == 429:
            retry_after = getattr(exc, "retry_after", None)
            if retry_after:
                headers["Retry-After"] = str(retry_after)
        return problem_response(
            code,
            slug=_http_slug(code),
            title=HTTPStatus(code).phrase,
            detail=exc.description or HTTPStatus(code).description,
            headers=headers,
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        return problem_response(
            500,
            slug="internal-error",
            title="Internal server error",
            detail="The server failed to handle this request; it has been logged.",
        )
