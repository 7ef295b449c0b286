"""Fixtures of the geo tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.nominatim import FakeNominatim


@pytest.fixture
def nominatim() -> Iterator[FakeNominatim]:
    """A local Nominatim; point a geocoder at `nominatim.domain`."""
    server = FakeNominatim().start()
    yield server
    server.stop()
