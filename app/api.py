"""The one decorator every JSON endpoint goes through, and the OpenAPI document built from it.

`@endpoint(...)` declares who may call a view, what body and query it takes and what it
returns. The same declaration authenticates, validates, commits the request's transaction,
serializes the answer, and describes the route in /api/v1/openapi.json, so the documentation
cannot drift from the code.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from flask import Flask, Response, g, json, request
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from app.errors import PROBLEM_MEDIA_TYPE, Forbidden, Problem, Unauthorized
from app.extensions import current_services, get_session, get_settings
from app.idempotency import run_idempotent
from app.roles import Principal, Role
from app.tokens import verify_token

Body = TypeVar("Body", bound=BaseModel)


@dataclass(frozen=True)
class Multipart:
    """A multipart/form-data body, for the document only: the view reads request.files and
    request.form itself (a file is not JSON, and an upload need not be read into a model).

    `fields` names the parts, a file part typed app.schemas.FilePart; `media_types` lists, per
    file part, the types the view accepts. The size limit is the app's MAX_CONTENT_LENGTH."""

    fields: type[BaseModel]
    media_types: Mapping[str, Iterable[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class EndpointSpec:
    roles: frozenset[Role] | None  # None: public
    body: type[BaseModel] | None = None
    multipart: Multipart | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    idempotent: bool = False
    summary: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    errors: tuple[int, ...] = field(default_factory=tuple)


# Confirms the caller's account or card is still good (raising Unauthorized when not); returns
# the name the audit records give the caller, if any.
PrincipalCheck = Callable[[Session, Principal], "str | None"]


@dataclass(frozen=True)
class RequestGuards:
    """What every authenticated request passes before its view runs. The endpoint framework
    knows no domain: the wiring supplies these (auth checks staff accounts and limits callers,
    loyalty checks customers' cards, audit records what a staff request changes)."""

    principal_checks: Mapping[Role, PrincipalCheck]
    limit_caller: Callable[[Principal], None]
    # (session=, principal=, actor_email=) -> the scope that encloses the request's commit
    audit_scope: Callable[..., AbstractContextManager]


class BadRequest(Problem):
    status, slug, title = 400, "bad-request", "Bad request"


class UnsupportedMediaType(Problem):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


def current_principal() -> Principal:
    return g.principal


def current_customer_id() -> int:
    """The calling customer's id (views declared for the customer role only)."""
    customer_id = current_principal().customer_id
    assert customer_id is not None, "not a customer's request"
    return customer_id


def current_user_id() -> int:
    """The calling staff user's id (views declared for staff roles only)."""
    user_id = current_principal().user_id
    assert user_id is not None, "not a staff request"
    return user_id


def _authenticate() -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("This endpoint needs an 'Authorization: Bearer <token>' header.")
    settings = get_settings()
    return verify_token(
        token.strip(),
        secret=settings.signing_secret(),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )


def _authorize(spec: EndpointSpec, guards: RequestGuards) -> None:
    g.principal, g.actor_name = None, None
    if spec.roles is None:
        return
    principal = _authenticate()
    if principal.role not in spec.roles:
        allowed = ", ".join(sorted(role.value for role in spec.roles))
        raise Forbidden(f"The {principal.role.value} role may not do this; it needs one of: {allowed}.")
    g.actor_name = guards.principal_checks[principal.role](get_session(), principal)
    g.principal = principal
    guards.limit_caller(principal)


def _json_body(model: type[BaseModel]) -> Any:
    if not request.content_length and not request.get_data(cache=True):
        if all(not field.is_required() for field in model.model_fields.values()):
            return {}  # every field is optional, so no body at all means "all defaults"
        raise BadRequest("The request body is empty; a JSON object is expected.")
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise UnsupportedMediaType(f"Send the body as application/json (got {request.mimetype or 'no Content-Type'}).")
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.") from exc


def parse_body(model: type[Body]) -> Body:
    return model.model_validate(_json_body(model))


def _parse_query(model: type[BaseModel]) -> BaseModel:
    values = {
        key: request.args.getlist(key) if len(request.args.getlist(key)) > 1 else value
        for key, value in request.args.items()
    }
    return model.model_validate(values)


class ResponseMismatch(RuntimeError):
    """A view returned what its declared response model cannot hold: a server bug (500), not a 422."""


@functools.cache
def _response_adapter(response: Any) -> TypeAdapter:
    return TypeAdapter(response)


def _serialize(spec: EndpointSpec, result: Any) -> Response:
    if isinstance(result, Response):
        return result
    status, headers = spec.status, dict[str, str]()
    if isinstance(result, tuple):
        result, status, *rest = result
        headers = rest[0] if rest else {}
    if spec.response is None or result is None:
        return Response(status=204 if result is None else status, headers=headers)
    adapter = _response_adapter(spec.response)
    try:
        # Validate first: dumping an ORM object directly reads only its loaded attributes, so a
        # freshly flushed row would answer without the columns it never set.
        value = adapter.validate_python(result, from_attributes=True)
    except ValidationError as exc:
        raise ResponseMismatch(f"the view's answer does not fit {spec.response}: {exc}") from exc
    payload = adapter.dump_python(value, mode="json")
    return Response(json.dumps(payload), status=status, headers=headers, mimetype="application/json")


@contextmanager
def request_transaction() -> Iterator[Session]:
    """The request's session: committed when the block succeeds, rolled back on any exception."""
    session = get_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


def transactional(view: Callable) -> Callable:
    """One transaction per request for views outside @endpoint (webhooks, wallet protocols)."""

    @functools.wraps(view)
    def wrapper(**kwargs: Any) -> Any:
        with request_transaction():
            return view(**kwargs)

    return wrapper


def endpoint(
    *,
    roles: Iterable[Role] | None,
    body: type[BaseModel] | None = None,
    multipart: Multipart | None = None,
    query: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    idempotent: bool = False,
    tags: Iterable[str] = (),
    errors: Iterable[int] = (),
) -> Callable:
    if body is not None and multipart is not None:
        raise TypeError("An endpoint takes a JSON body or a multipart one, not both.")

    def decorate(view: Callable) -> Callable:
        # cleandoc: a docstring's later lines carry the code's indentation, which is not the text's
        summary, _, description = inspect.cleandoc(view.__doc__ or "").partition("\n")
        spec = EndpointSpec(
            roles=frozenset(roles) if roles is not None else None,
            body=body,
            multipart=multipart,
            query=query,
            response=response,
            status=status,
            idempotent=idempotent,
            summary=summary.strip(),
            description=description.strip(),
            tags=tuple(tags),
            errors=tuple(errors),
        )

        @functools.wraps(view)
        def wrapper(**path_args: Any) -> Response:
            guards = current_services().request_guards
            _authorize(spec, guards)
            kwargs = dict(path_args)
            if spec.body is not None:
                kwargs["body"] = parse_body(spec.body)
            if spec.query is not None:
                kwargs["query"] = _parse_query(spec.query)
            # The audit scope encloses the commit, so the last flush is recorded too.
            with (
                guards.audit_scope(session=get_session(), principal=g.principal, actor_email=g.actor_name),
                request_transaction() as session,
            ):
                if spec.idempotent:
                    return run_idempotent(
                        session=session, principal=g.principal, call=lambda: _serialize(spec, view(**kwargs))
                    )
                return _serialize(spec, view(**kwargs))

        wrapper.api_spec = spec  # type: ignore[attr-defined]  # read by api_routes and the OpenAPI builder
        return wrapper

    return decorate


# --- OpenAPI ---------------------------------------------------------------------------------

_PATH_PARAM = re.compile(r"<(?:(?P<conv>[a-z]+):)?(?P<name>\w+)>")
_PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def api_routes(app: Flask) -> list[tuple[Any, EndpointSpec]]:
    """Every (rule, spec) pair of the JSON API, for the OpenAPI document and the authz tests."""
    routes = []
    for rule in app.url_map.iter_rules():
        spec = getattr(app.view_functions.get(rule.endpoint), "api_spec", None)
        if spec is not None:
            routes.append((rule, spec))
    return routes


def _declared_types(spec: EndpointSpec) -> list[Any]:
    multipart = spec.multipart.fields if spec.multipart is not None else None
    return [declared for declared in (spec.body, multipart, spec.query, spec.response) if declared is not None]


def _json_schemas(routes: list[tuple[Any, EndpointSpec]]) -> tuple[dict[Any, dict], dict]:
    """The schema of every body, query and response type, and the named schemas they refer to.

    One pass over all of them, so a model nested anywhere (a query's enum, a response's item)
    lands once in components/schemas and every reference to it says #/components/schemas/..."""
    types = {declared for _, spec in routes for declared in _declared_types(spec)}
    mode: Literal["validation"] = "validation"
    inputs = [(declared, mode, TypeAdapter(declared)) for declared in sorted(types, key=repr)]
    by_type, top = TypeAdapter.json_schemas(inputs, ref_template="#/components/schemas/{model}")
    return {declared: schema for (declared, _), schema in by_type.items()}, top.get("$defs", {})


def _resolved(schema: dict, components: dict) -> dict:
    """A top-level model's schema is a reference; its fields are in the component it names."""
    ref = schema.get("$ref", "")
    return components[ref.rsplit("/", 1)[1]] if ref.startswith("#/components/schemas/") else schema


def _multipart_body(multipart: Multipart, schemas: dict[Any, dict], max_bytes: int | None) -> dict:
    media_type: dict[str, Any] = {"schema": schemas[multipart.fields]}
    if multipart.media_types:
        media_type["encoding"] = {
            name: {"contentType": ", ".join(types)} for name, types in multipart.media_types.items()
        }
    body: dict[str, Any] = {"required": True, "content": {"multipart/form-data": media_type}}
    if max_bytes:
        size = f"{max_bytes // 2**20} MiB" if max_bytes % 2**20 == 0 else f"{max_bytes} bytes"
        body["description"] = f"At most {size} in all, parts and their headers included; a larger request is a 413."
    return body


def _operation(
    rule: Any, spec: EndpointSpec, schemas: dict[Any, dict], components: dict, max_bytes: int | None
) -> dict:
    operation: dict[str, Any] = {
        "operationId": rule.endpoint.replace(".", "_"),
        "tags": list(spec.tags) or [rule.endpoint.split(".")[0]],
        "responses": {},
    }
    # No stand-in text: an operation without a docstring shows as undocumented, and a test says so.
    if spec.summary:
        operation["summary"] = spec.summary
    if spec.description:
        operation["description"] = spec.description
    params = [
        {
            "name": m["name"],
            "in": "path",
            "required": True,
            "schema": {"type": "integer"} if m["conv"] == "int" else {"type": "string"},
        }
        for m in _PATH_PARAM.finditer(rule.rule)
    ]
    if spec.query is not None:
        query_schema = _resolved(schemas[spec.query], components)
        for name, prop in query_schema.get("properties", {}).items():
            params.append(
                {"name": name, "in": "query", "required": name in query_schema.get("required", []), "schema": prop}
            )
    if spec.idempotent:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": "A retry with the same key returns the first answer and changes nothing.",
            }
        )
    if params:
        operation["parameters"] = params
    if spec.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas[spec.body]}},
        }
    if spec.multipart is not None:
        operation["requestBody"] = _multipart_body(spec.multipart, schemas, max_bytes)
    if spec.response is not None:
        operation["responses"][str(spec.status)] = {
            "description": "Success",
            "content": {"application/json": {"schema": schemas[spec.response]}},
        }
    else:
        operation["responses"]["204"] = {"description": "Done"}
    problem = {"content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    codes = set(spec.errors)
    # 413: past MAX_CONTENT_LENGTH, whatever the body; 415: not the media type the body is declared in
    if spec.body is not None:
        codes |= {400, 413, 415, 422}
    if spec.multipart is not None:
        codes |= {413, 415}
    if spec.query is not None:
        codes |= {422}
    if spec.roles is not None:
        codes |= {401, 403, 429}  # 429: the per-account rate limit (app/auth/abuse.py)
        operation["security"] = [{"bearerAuth": []}]
        operation["x-roles"] = sorted(role.value for role in spec.roles)
    if spec.idempotent:
        # 400: no key; 409: the first request with the key is still running; 422: key reused for another body
        codes |= {400, 409, 422}
    for code in sorted(codes):
        operation["responses"][str(code)] = {"description": _ERROR_TEXT.get(code, "Error"), **problem}
    return operation


_ERROR_TEXT = {
    400: "Malformed request",
    401: "Not authenticated",
    403: "Role not allowed",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Body too large",
    415: "Body is not of the media type the operation takes",
    422: "Invalid request",
    429: "Rate or velocity limit exceeded",
}


def openapi_document(app: Flask) -> dict:
    routes = api_routes(app)
    schemas, components = _json_schemas(routes)
    paths: dict[str, dict] = {}
    for rule, spec in sorted(routes, key=lambda pair: pair[0].rule):
        path = _PATH_PARAM.sub(lambda m: "{" + m["name"] + "}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                rule, spec, schemas, components, app.config.get("MAX_CONTENT_LENGTH")
            )
    components["Problem"] = _PROBLEM_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Pointcard API",
            "version": "1",
            "description": "Loyalty cards in the phone wallet. This document, readable: [/docs](/docs).",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
