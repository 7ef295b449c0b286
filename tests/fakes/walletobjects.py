"""Google's own schema of the Wallet REST API: the walletobjects v1 discovery document that
ships inside google-api-python-client, and a checker for the payloads we send.

Discovery documents name no required fields; Google marks them in the description
("Required. ..."), so that is what is checked. Fields documented as deprecated are refused
too: Google keeps them working only for old passes.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import googleapiclient


@lru_cache(maxsize=1)
def discovery() -> dict:
    path = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "walletobjects.v1.json"
    return json.loads(path.read_text())


def schema_errors(value: Any, schema: str) -> list[str]:
    """Every way `value` departs from the named schema (LoyaltyClass, LoyaltyObject, ...)."""
    errors: list[str] = []
    _check(value, {"$ref": schema}, schema, errors)
    return errors


def _check(value: Any, spec: dict, path: str, errors: list[str]) -> None:
    if "$ref" in spec:
        _check_object(value, spec["$ref"], path, errors)
        return
    kind = spec.get("type")
    checker = _CHECKS.get(kind)
    if checker is None:
        errors.append(f"{path}: schema type {kind!r} is not understood by this checker")
        return
    checker(value, spec, path, errors)


def _check_object(value: Any, name: str, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a {name} object, got {type(value).__name__}")
        return
    properties = discovery()["schemas"][name].get("properties", {})
    for key, item in value.items():
        if key not in properties:
            errors.append(f"{path}.{key}: {name} has no such field")
        elif properties[key].get("description", "").lstrip().lower().startswith("deprecated"):
            errors.append(f"{path}.{key}: deprecated in {name}")
        else:
            _check(item, properties[key], f"{path}.{key}", errors)
    for key, prop in properties.items():
        if prop.get("description", "").startswith("Required.") and key not in value:
            errors.append(f"{path}.{key}: required by {name} but missing")


def _string(value, spec, path, errors):
    if not isinstance(value, str):
        errors.append(f"{path}: expected a string, got {value!r}")
    elif "enum" in spec and value not in spec["enum"]:
        errors.append(f"{path}: {value!r} is not one of {spec['enum']}")
    elif spec.get("format") in ("int64", "uint64") and not value.lstrip("-").isdigit():
        errors.append(f"{path}: expected an int64 as a string of digits, got {value!r}")


def _integer(value, spec, path, errors):
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(f"{path}: expected an integer, got {value!r}")
    elif spec.get("format") == "int32" and not -(2**31) <= value < 2**31:
        errors.append(f"{path}: {value} does not fit an int32")


def _number(value, spec, path, errors):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        errors.append(f"{path}: expected a number, got {value!r}")


def _boolean(value, spec, path, errors):
    if not isinstance(value, bool):
        errors.append(f"{path}: expected true or false, got {value!r}")


def _array(value, spec, path, errors):
    if not isinstance(value, list):
        errors.append(f"{path}: expected an array, got {type(value).__name__}")
        return
    for index, item in enumerate(value):
        _check(item, spec["items"], f"{path}[{index}]", errors)


def _map(value, spec, path, errors):
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object, got {type(value).__name__}")
        return
    for key, item in value.items():
        if "additionalProperties" in spec:
            _check(item, spec["additionalProperties"], f"{path}.{key}", errors)


_CHECKS = {
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "array": _array,
    "object": _map,
    "any": lambda *args: None,
}
