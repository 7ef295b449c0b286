"""A .pkpass: pass.json, the design's files, manifest.json (SHA-1 of each) and its signature.

Pure functions of their inputs (no database, no settings), so the benchmark and the tests
build passes exactly as the service does.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.wallet.apple.signing import Credentials, sign_manifest

MEDIA_TYPE = "application/vnd.apple.pkpass"
# PNGs are compressed already: deflating them again costs time and saves nothing.
_STORED_SUFFIXES = (".png",)


def json_bytes(document: Any, *, indent: int | None = None) -> bytes:
    """UTF-8 without a byte-order mark (Wallet rejects a BOM)."""
    return json.dumps(document, ensure_ascii=False, indent=indent, sort_keys=indent is not None).encode("utf-8")


def manifest(files: Mapping[str, bytes]) -> bytes:
    """SHA-1 of every file in the pass, as Apple's manifest format requires."""
    digests = {name: hashlib.sha1(data, usedforsecurity=False).hexdigest() for name, data in files.items()}
    return json_bytes(digests, indent=2)


def zip_pass(files: Mapping[str, bytes], *, modified: datetime) -> bytes:
    buffer = io.BytesIO()
    stamp = modified.timetuple()[:6]
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            stored = name.lower().endswith(_STORED_SUFFIXES)
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def build_pkpass(
    *, pass_json: Mapping[str, Any], files: Mapping[str, bytes], credentials: Credentials, modified: datetime
) -> bytes:
    contents = {"pass.json": json_bytes(pass_json), **files}
    signed = manifest(contents)
    return zip_pass(
        {**contents, "manifest.json": signed, "signature": sign_manifest(signed, credentials)}, modified=modified
    )
