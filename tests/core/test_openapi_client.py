"""A Python client generated from /api/v1/openapi.json has a function for every operation.

openapi-python-client skips, with a warning, any operation it cannot make sense of (a
reference that points nowhere, a body it cannot model), so counting what it generated is a
check of the document that a validator alone does not make. It reads the document from a
file and needs no network; its post-hooks (ruff) are turned off, so nothing else is needed.
"""

from __future__ import annotations

import importlib
import io
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.roles import Role

pytestmark = pytest.mark.slow  # a subprocess generating about 200 files: a few seconds

PACKAGE = "pointcard_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


def _generate(document: dict, directory: Path) -> Path:
    (directory / "openapi.json").write_text(json.dumps(document))
    (directory / "config.yml").write_text(
        f"post_hooks: []\nproject_name_override: pointcard-client\npackage_name_override: {PACKAGE}\n"
    )
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(directory / "openapi.json"),
            "--config",
            str(directory / "config.yml"),
            "--output-path",
            str(directory / PACKAGE),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=directory,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "will not be generated" not in result.stdout, result.stdout
    return directory / PACKAGE


@pytest.fixture
def client_package(app, tmp_path, monkeypatch):
    """The generated package, importable for the test and forgotten after it."""
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    _generate(document, tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield document, importlib.import_module(PACKAGE)
    for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def test_the_generated_client_has_a_function_for_every_operation(client_package, world, live_server):
    document, package = client_package
    operations = sorted(
        operation["operationId"] for operations in document["paths"].values() for operation in operations.values()
    )
    api = importlib.import_module(f"{PACKAGE}.api")
    generated = sorted(
        module.name.rsplit(".", 1)[1]
        for module in pkgutil.walk_packages(api.__path__, prefix=f"{PACKAGE}.api.")
        if hasattr(importlib.import_module(module.name), "sync_detailed")
    )
    assert generated == operations

    # The multipart upload, through the client: the document describes the form the view reads.
    client = package.AuthenticatedClient(base_url=live_server, token=world.token(Role.marketer))
    upload = importlib.import_module(f"{PACKAGE}.api.messages.messaging_upload_recording")
    types = importlib.import_module(f"{PACKAGE}.types")
    body = importlib.import_module(f"{PACKAGE}.models").VoiceRecordingUpload(
        file=types.File(payload=io.BytesIO(b"ID3fake-mp3"), file_name="offer.mp3", mime_type="audio/mpeg"),
        title="Spring offer",
    )
    with client:
        response = upload.sync_detailed(client=client, body=body)
    assert response.status_code == 201, response.content
    assert (response.parsed.title, response.parsed.content_type, response.parsed.size) == (
        "Spring offer",
        "audio/mpeg",
        len(b"ID3fake-mp3"),
    )
