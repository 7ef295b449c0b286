"""docs/configuration.md is generated from the settings classes and must stay so (`make docs`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from app import config_reference
from app.config import Settings

# The checkout: the folder above this file that holds pyproject.toml.
ROOT = next(folder for folder in Path(__file__).resolve().parents if (folder / "pyproject.toml").exists())
REFERENCE = ROOT / "docs" / "configuration.md"


def test_configuration_md_is_what_the_settings_classes_say():
    expected = config_reference.render(config_reference.sections())
    assert REFERENCE.read_text() == expected, (
        "docs/configuration.md is stale: a setting was added, removed or re-documented. Run `make docs`."
    )


def test_every_setting_has_a_meaning():
    missing = [f"{s.env} ({s.source})" for s in config_reference.undocumented(config_reference.sections())]
    assert missing == [], "add a comment above these settings or a Field(description=...): " + ", ".join(missing)


def test_the_names_are_the_ones_pydantic_settings_reads(monkeypatch):
    """Every documented variable, set, reaches its field: the names are not just plausible."""
    found = config_reference.sections()
    names = [setting.env for section in found for setting in section.settings]
    assert len(names) == len(set(names))
    for name in names:
        monkeypatch.setenv(name, "[]")  # JSON for the complex fields, a plain string for the others
    read = EnvSettingsSource(Settings)()

    def leaves(tree: dict, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
        out: set[tuple[str, ...]] = set()
        for key, value in tree.items():
            out |= leaves(value, (*path, key)) if isinstance(value, dict) else {(*path, key)}
        return out

    # One leaf per documented row: each variable landed on a field of its own.
    assert len(leaves(read)) == len(names)


def test_the_output_is_the_same_in_any_folder(tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("POINTCARD_")}
    script = "from app import config_reference as c; print(c.render(c.sections()), end='')"
    other_folder = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert other_folder == config_reference.render(config_reference.sections())
    assert str(tmp_path) not in other_folder and str(ROOT) not in other_folder
    assert not (tmp_path / "instance").exists()


# --- the generator on a settings class of its own ---------------------------------------------


class Inner(BaseModel):
    # Documented by a comment.
    depth: int = Field(default=1, ge=0)
    unexplained: str = "x"


class Sample(BaseSettings):
    """A throwaway settings class."""

    model_config = SettingsConfigDict(env_prefix="SAMPLE_", env_nested_delimiter="__")

    # --- a heading, not a meaning ---
    headed: int = 3
    # The comment loses to the description.
    described: str = Field(default="d", description="From the description.")
    # A secret's default is never shown.
    token: SecretStr | None = SecretStr("hunter2")
    # Read without the prefix.
    url: str = Field(default="sqlite:///here", validation_alias="SAMPLE_URL_ALIAS")
    inner: Inner = Field(default_factory=Inner)


def test_meanings_come_from_descriptions_then_comments_and_gaps_are_reported():
    found = config_reference.sections(Sample)
    rows = {s.env: s for section in found for s in section.settings}
    assert list(rows) == [
        "SAMPLE_HEADED",
        "SAMPLE_DESCRIBED",
        "SAMPLE_TOKEN",
        "SAMPLE_URL_ALIAS",
        "SAMPLE_INNER__DEPTH",
        "SAMPLE_INNER__UNEXPLAINED",
    ]
    assert rows["SAMPLE_DESCRIBED"].meaning == "From the description."
    assert rows["SAMPLE_INNER__DEPTH"].meaning == "Documented by a comment."
    assert rows["SAMPLE_INNER__DEPTH"].type == "`int`, >= 0"
    assert rows["SAMPLE_TOKEN"].default == "*set, not shown*"
    assert [s.env for s in config_reference.undocumented(found)] == ["SAMPLE_HEADED", "SAMPLE_INNER__UNEXPLAINED"]
    assert rows["SAMPLE_URL_ALIAS"].default == "`sqlite:///here`"
    assert "hunter2" not in config_reference.render(found)
