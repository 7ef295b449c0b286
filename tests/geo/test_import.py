"""Store import and geocoding: real geopy against a local Nominatim look-alike, and no network."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.geo.geocoding import GeocodingFailed, NominatimGeocoder
from app.loyalty.models import Store
from tests.geo.support import geo_settings
from tests.support import closed_port


def test_nominatim_geocodes_with_our_user_agent(nominatim):
    geocoder = NominatimGeocoder(geo_settings(nominatim.domain))
    assert geocoder.locate("1 Rue de Rivoli, Paris") == pytest.approx((48.8556, 2.3522))
    assert geocoder.locate("1 Rue de Rivoli, Paris") == pytest.approx((48.8556, 2.3522))
    assert nominatim.user_agents == ["pointcard-tests/1.0"]  # the second answer came from the cache


def test_without_a_network_the_error_says_so():
    geocoder = NominatimGeocoder(geo_settings(f"127.0.0.1:{closed_port()}"))
    with pytest.raises(GeocodingFailed, match=r"cannot be reached \(no network\?\)"):
        geocoder.locate("1 Rue de Rivoli, Paris")


def write_csv(tmp_path, text: str):
    path = tmp_path / "stores.csv"
    path.write_text(text)
    return str(path)


def run_import(app, path):
    return app.test_cli_runner().invoke(args=["geo", "import", path])


def store_names(world) -> list[str]:
    with world.database.transaction() as session:
        return list(session.scalars(select(Store.name).order_by(Store.id)))[len(world.store_ids) :]


def test_the_import_keeps_good_rows_and_reports_bad_ones_by_line(app, world, tmp_path):
    path = write_csv(
        tmp_path,
        "name,address,latitude,longitude,timezone\n"
        "Louvre,1 Rue de Rivoli,48.8606,2.3376,Europe/Paris\n"
        "Nowhere,,,,Europe/Paris\n"
        "Bad zone,x,48.1,2.1,Mars/Olympus\n"
        "Too far north,x,91,2.1,Europe/Paris\n"
        "Lyon,Place Bellecour,45.7578,4.8320,Europe/Paris\n",
    )
    result = run_import(app, path)
    assert result.exit_code == 1
    assert "2 stores imported, 3 rows refused" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert errors[0].startswith("line 3: latitude and longitude are required: no geocoder is configured")
    assert errors[1].startswith("line 4: timezone:") and "IANA" in errors[1]
    assert errors[2].startswith("line 5: latitude:")
    assert store_names(world) == ["Louvre", "Lyon"]


@pytest.fixture
def settings_overrides(request):
    return getattr(request, "param", {})


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "geo": {
                "geocoder": "nominatim",
                "nominatim_scheme": "http",
                "geocoder_min_delay_seconds": 0,
                "geocoder_timeout_seconds": 2,
            }
        }
    ],
    indirect=True,
)
def test_the_import_geocodes_rows_without_coordinates(app, world, tmp_path, nominatim):
    app.extensions["pointcard"].settings.geo.nominatim_domain = nominatim.domain
    path = write_csv(
        tmp_path,
        "name,address,latitude,longitude,timezone\n"
        'Rivoli,"1 Rue de Rivoli, Paris",,,Europe/Paris\n'
        'Unknown,"Nowhere street",,,Europe/Paris\n',
    )
    result = run_import(app, path)
    assert "1 stores imported, 1 rows refused" in result.stdout
    assert "line 3: No place found for the address 'Nowhere street'." in result.stderr
    with world.database.transaction() as session:
        rivoli = session.scalar(select(Store).where(Store.name == "Rivoli"))
        assert (rivoli.latitude, rivoli.longitude) == pytest.approx((48.8556, 2.3522))


@pytest.mark.parametrize(
    "settings_overrides",
    [{"geo": {"geocoder": "nominatim", "nominatim_scheme": "http", "geocoder_timeout_seconds": 2}}],
    indirect=True,
)
def test_the_import_says_when_the_geocoder_is_unreachable(app, world, tmp_path):
    app.extensions["pointcard"].settings.geo.nominatim_domain = f"127.0.0.1:{closed_port()}"
    path = write_csv(tmp_path, "name,address,latitude,longitude,timezone\nRivoli,1 Rue de Rivoli,,,Europe/Paris\n")
    result = run_import(app, path)
    assert "line 2: The geocoder at http://127.0.0.1:" in result.stderr and "(no network?)" in result.stderr
    assert store_names(world) == []


def test_a_csv_without_the_needed_columns_is_refused(app, world, tmp_path):
    result = run_import(app, write_csv(tmp_path, "title,lat\nx,1\n"))
    assert result.exit_code == 1 and "the CSV header lacks ['name', 'timezone']" in result.stderr
