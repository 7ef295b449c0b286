"""Google's own schema of the Wallet REST API, and a checker for the payloads we send.

The schema is Google's walletobjects v1 discovery document, kept in the repository at
app/wallet/google/discovery/walletobjects.v1.json: copied on 2026-12-02, unmodified, from
google-api-python-client 2.202.0's discovery cache (the document's revision 20260806). To update
it, copy the newer document over it (from a newer google-api-python-client, or
https://walletobjects.googleapis.com/$discovery/rest?version=v1) and run tests/wallet/google/.

Discovery documents name no required fields; Google marks them in the description
("Required. ..."), so that is what is checked. Fields documented as deprecated are refused
too: Google keeps them working only for old passes.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from typing import Any

# Package data of app.wallet.google (pyproject.toml), so it is there however the app is installed.
DISCOVERY_DOCUMENT = files("app.wallet.google") / "discovery" / "walletobjects.v1.json"


@lru_cache(maxsize=1)
def discovery() -> dict:
    return json.loads(DISCOVERY_DOCUMENT.read_text())


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
