"""Pass designs: per program, a Jinja2 pass.json template, images and localizations.

    wallet_templates/<program slug>/apple/
        pass.json                  Jinja2; renders the look: colours, labels, fields
        icon.png, icon@2x.png, icon@3x.png, logo.png, logo@2x.png, logo@3x.png   (required)
        strip.png, strip@2x.png, strip@3x.png                                    (optional)
        <lang>.lproj/pass.strings  optional; may hold localized images too

A design is checked when it is loaded, before any customer sees it: the template is rendered
with awkward sample values (quotes, backslashes, no tier, no reward) and must give a pass.json
that meets Apple's schema, every image must be a PNG, and every pass.strings must parse. A
failure is a DesignError naming the file. The keys that identify and secure a pass (serial
number, token, web service, barcodes, locations...) belong to the service, not the design.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from app.wallet.apple import schema

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REQUIRED_IMAGES = tuple(f"{name}{scale}.png" for name in ("icon", "logo") for scale in ("", "@2x", "@3x"))
ALLOWED_IMAGES = frozenset(f"{name}{scale}.png" for name in ("icon", "logo", "strip") for scale in ("", "@2x", "@3x"))
SERVICE_KEYS = frozenset(
    {
        "formatVersion",
        "passTypeIdentifier",
        "teamIdentifier",
        "serialNumber",
        "authenticationToken",
        "webServiceURL",
        "barcode",
        "barcodes",
        "locations",
        "voided",
        "expirationDate",
    }
)
_LPROJ = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]+)*\.lproj$")
# One "key" = "value"; entry, or a comment, or blank space, as in Apple's .strings files.
_STRINGS_TOKEN = re.compile(r'\s+|/\*.*?\*/|//[^\n]*|"(?:[^"\\]|\\.)*"\s*=\s*"(?:[^"\\]|\\.)*"\s*;', re.DOTALL)

# The same identity keys every real pass gets, so the load check can apply the whole schema.
_SAMPLE_IDENTITY = {
    "formatVersion": 1,
    "passTypeIdentifier": "pass.sample.design-check",
    "teamIdentifier": "SAMPLE0000",
    "serialNumber": "sample",
    "organizationName": "Sample",
    "description": "Sample",
    "authenticationToken": "0123456789abcdef",
    "webServiceURL": "https://example.invalid/passkit",
    "barcodes": [{"format": "PKBarcodeFormatQR", "message": "sample", "messageEncoding": "iso-8859-1"}],
}
_AWKWARD = 'Zoë "Z" O\'Brien \\ {%'
SAMPLE_CONTEXTS: tuple[dict[str, Any], ...] = (
    {
        "member": {"name": _AWKWARD, "first_name": _AWKWARD, "number": "1234567897"},
        "program": {"name": _AWKWARD, "slug": "sample"},
        "balance": 123456,
        "tier": _AWKWARD,
        "next_reward": {"name": _AWKWARD, "points": 300, "points_to_go": 17},
        "rewards_ready": 2,
        "closed": False,
    },
    {
        "member": {"name": "A", "first_name": "A", "number": "1234567897"},
        "program": {"name": "P", "slug": "sample"},
        "balance": -40,
        "tier": "",
        "next_reward": None,
        "rewards_ready": 0,
        "closed": True,
    },
)


class DesignError(Exception):
    """A pass design that cannot make valid passes; the message names the file."""


def _environment(directory: Path) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    environment.filters["tojson"] = lambda value: json.dumps(value, ensure_ascii=False)
    return environment


@dataclass(frozen=True)
class PassDesign:
    directory: Path
    template: jinja2.Template
    # Every file of the pass but pass.json, by its name inside the pass (images, xx.lproj/...).
    files: Mapping[str, bytes]

    @property
    def template_path(self) -> Path:
        return self.directory / "pass.json"

    def render(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The design's part of pass.json for one card."""
        try:
            text = self.template.render(**context)
        except jinja2.TemplateError as exc:
            raise DesignError(f"{self.template_path}: {exc}") from exc
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DesignError(
                f"{self.template_path} renders invalid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                "write text values as {{ value|tojson }} so quotes in names cannot break it"
            ) from exc
        if not isinstance(document, dict):
            raise DesignError(f"{self.template_path} must render a JSON object")
        return document


def _check_rendered(design: PassDesign, document: dict[str, Any]) -> None:
    owned = sorted(SERVICE_KEYS & document.keys())
    if owned:
        raise DesignError(f"{design.template_path} sets {', '.join(owned)}, which the service fills in; remove them")
    found = schema.problems({**_SAMPLE_IDENTITY, **document})
    if found:
        raise DesignError(f"{design.template_path} renders a pass.json Apple would refuse: " + "; ".join(found))


def _read_png(path: Path) -> bytes:
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise DesignError(f"{path} is not a PNG image")
    return data


def _check_strings(path: Path, data: bytes) -> None:
    try:
        text = data.decode("utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DesignError(f"{path} is neither UTF-8 nor UTF-16 text") from exc
    position = 0
    while position < len(text):
        match = _STRINGS_TOKEN.match(text, position)
        if match is None:
            line = text.count("\n", 0, position) + 1
            raise DesignError(f'{path}, line {line}: expected "key" = "value"; (or a comment)')
        position = match.end()


def _localization_files(directory: Path) -> dict[str, bytes]:
    files = {}
    for path in sorted(directory.iterdir()):
        name = f"{directory.name}/{path.name}"
        if path.name.startswith("."):
            continue
        if path.name == "pass.strings":
            files[name] = path.read_bytes()
            _check_strings(path, files[name])
        elif path.name in ALLOWED_IMAGES:
            files[name] = _read_png(path)
        else:
            raise DesignError(f"{path}: a localization holds only pass.strings and localized images")
    return files


def _design_files(directory: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.name == "pass.json":
            continue
        if path.is_dir() and _LPROJ.match(path.name):
            files.update(_localization_files(path))
        elif path.is_file() and path.name in ALLOWED_IMAGES:
            files[path.name] = _read_png(path)
        else:
            allowed = ", ".join(sorted(ALLOWED_IMAGES))
            raise DesignError(f"{path} is not part of a store card design (images: {allowed}; <lang>.lproj/)")
    missing = [name for name in REQUIRED_IMAGES if name not in files]
    if missing:
        raise DesignError(f"{directory} lacks required image(s): {', '.join(str(directory / m) for m in missing)}")
    return files


def load_design(directory: Path) -> PassDesign:
    """Read and check one design directory; raises DesignError naming the faulty file."""
    template_path = directory / "pass.json"
    if not template_path.is_file():
        raise DesignError(f"{template_path} is missing: every pass design needs a pass.json template")
    try:
        template = _environment(directory).get_template("pass.json")
    except jinja2.TemplateSyntaxError as exc:
        raise DesignError(f"{template_path}, line {exc.lineno}: {exc.message}") from exc
    design = PassDesign(directory=directory, template=template, files=_design_files(directory))
    for context in SAMPLE_CONTEXTS:
        _check_rendered(design, design.render(context))
    return design


# --- finding a program's design, loaded once per version of its files -------------------------

# How long a loaded design is trusted before its files are looked at again (a stat per file).
RECHECK_SECONDS = 1.0


@dataclass
class _Cached:
    fingerprint: tuple
    design: PassDesign
    checked_at: float


_cache: dict[Path, _Cached] = {}
_cache_lock = threading.Lock()


def _fingerprint(directory: Path) -> tuple:
    """What changes when a designer edits, adds or removes a file."""
    entries = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        for name in sorted(names):
            stat = os.stat(os.path.join(root, name))
            entries.append((root, name, stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


def design_directory(templates_dir: Path, program_slug: str) -> Path:
    for candidate in (templates_dir / program_slug / "apple", templates_dir / "default" / "apple"):
        if candidate.is_dir():
            return candidate
    raise DesignError(
        f"no Apple pass design for program {program_slug!r}: create {templates_dir / program_slug / 'apple'}/ "
        f"(or {templates_dir / 'default' / 'apple'}/ for every program)"
    )


def design_for(templates_dir: Path, program_slug: str, *, recheck_seconds: float = RECHECK_SECONDS) -> PassDesign:
    """The program's design; an edit on disk reaches passes within recheck_seconds, no restart."""
    key = templates_dir / program_slug
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None and now - cached.checked_at < recheck_seconds:
        return cached.design
    directory = design_directory(templates_dir, program_slug)
    fingerprint = _fingerprint(directory)
    if cached is None or cached.fingerprint != fingerprint or cached.design.directory != directory:
        cached = _Cached(fingerprint, load_design(directory), now)
    cached.checked_at = now
    with _cache_lock:
        _cache[key] = cached
    return cached.design
