"""Fixtures: a freshly migrated database per test (SQLite or PostgreSQL), the app, clients.

Each test gets its own database copied from one migrated at the start of the run (a file copy
on SQLite, CREATE DATABASE ... TEMPLATE on PostgreSQL), so requests commit for real, several
connections and processes can share it, and nothing leaks between tests.

POINTCARD_TEST_STRICT=1 (set by .ci/run) turns every skip for a missing PostgreSQL or
browser into a failure, so CI always runs those tests (`tests.support.require`).

The local fakes of the outside services that tests in several packages use (Google, APNs) are
fixtures here; those of one package are in its conftest.py. Their code is in tests/fakes/.
"""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app, wiring
from app.db import Database
from app.db_cli import upgrade
from app.wallet.apple.config import AppleWalletSettings
from app.wallet.apple.dev import DEV_APNS_KEY_ID, create_dev_credentials
from tests.fakes.apns import FakeApns
from tests.fakes.google import FakeGoogle, ServiceAccountKey
from tests.support import World, make_settings, require

# Set by .ci/run on its SQLite pass: a PostgreSQL pass follows, so tests marked `postgres`
# (multi-process runs of minutes each) are left to it instead of running twice.
POSTGRES_PASS_FOLLOWS = os.environ.get("POINTCARD_TEST_POSTGRES_PASS_FOLLOWS") == "1"


def _postgres_tests_wait() -> bool:
    return POSTGRES_PASS_FOLLOWS and not os.environ.get("DATABASE_URL", "").startswith("postgresql")


def pytest_collection_modifyitems(config, items):
    """Runs wherever tests are collected: in each xdist worker (all collect the same items)."""
    if not _postgres_tests_wait():
        return
    left = [item for item in items if item.get_closest_marker("postgres")]
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = [item for item in items if not item.get_closest_marker("postgres")]


def pytest_terminal_summary(terminalreporter):
    # Under xdist the workers deselect, and the summary line does not count them: say so here.
    if _postgres_tests_wait():
        terminalreporter.write_line(
            "tests marked postgres were left to the PostgreSQL pass (POINTCARD_TEST_POSTGRES_PASS_FOLLOWS=1)"
        )


# Fixed privacy keys for this process and the ones it starts, so no test writes instance/.
os.environ.setdefault("POINTCARD_PRIVACY__KEYS", f'{{"test1": "{base64.b64encode(bytes(range(32))).decode()}"}}')
os.environ.setdefault("POINTCARD_PRIVACY__CURRENT_KEY_ID", "test1")
os.environ.setdefault("POINTCARD_PRIVACY__INDEX_KEY", base64.b64encode(bytes(range(32, 64))).decode())
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class SQLiteBackend:
    name = "sqlite"

    def __init__(self, directory) -> None:
        self.directory = directory
        self.template = directory / "template.db"
        upgrade(f"sqlite:///{self.template}")

    def fresh(self) -> str:
        path = self.directory / f"{uuid.uuid4().hex}.db"
        shutil.copyfile(self.template, path)
        return f"sqlite:///{path}"

    def drop(self, url: str) -> None:
        path = make_url(url).database
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)

    def close(self) -> None:
        pass


class PostgresBackend:
    name = "postgresql"

    def __init__(self, server_url: str) -> None:
        self.server = make_url(server_url)
        self.admin = create_engine(self.server, isolation_level="AUTOCOMMIT", pool_size=1)
        self.template_name = f"pointcard_tpl_{uuid.uuid4().hex[:10]}"
        self._execute(f'CREATE DATABASE "{self.template_name}"')
        upgrade(self._url(self.template_name))

    def _url(self, name: str) -> str:
        return self.server.set(database=name).render_as_string(hide_password=False)

    def _execute(self, sql: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(sql))

    def fresh(self) -> str:
        name = f"pointcard_t_{uuid.uuid4().hex[:12]}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template_name}"')
        return self._url(name)

    def drop(self, url: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')

    def close(self) -> None:
        self.drop(self._url(self.template_name))
        self.admin.dispose()


def _postgres_reachable(url: str) -> str | None:
    try:
        engine = create_engine(url)
        with engine.connect():
            pass
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means "not here"
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def backend(tmp_path_factory) -> Iterator[SQLiteBackend | PostgresBackend]:
    """The backend of this pass: PostgreSQL when DATABASE_URL names one, else SQLite."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgresql"):
        error = _postgres_reachable(url)
        if error:
            pytest.exit(f"DATABASE_URL points at PostgreSQL but it is unreachable: {error}", returncode=3)
        chosen = PostgresBackend(url)
    else:
        chosen = SQLiteBackend(tmp_path_factory.mktemp("db"))
    yield chosen
    chosen.close()


@pytest.fixture(scope="session")
def pg_backend(backend) -> Iterator[PostgresBackend]:
    """PostgreSQL for the tests that need its locking; from this pass or the local server."""
    if isinstance(backend, PostgresBackend):
        yield backend
        return
    url = os.environ.get("POINTCARD_TEST_POSTGRES_URL", DEFAULT_PG)
    error = _postgres_reachable(url)
    require(error is None, f"PostgreSQL at {url} is unreachable ({error})")
    pg = PostgresBackend(url)
    yield pg
    pg.close()


@dataclass
class TestDatabase:
    url: str
    database: Database


def _fresh(chosen) -> Iterator[TestDatabase]:
    url = chosen.fresh()
    database = Database(url)
    wiring.build(make_settings(url), database)  # an app built on it later rewires it with its settings
    try:
        yield TestDatabase(url, database)
    finally:
        database.dispose()
        chosen.drop(url)


@pytest.fixture
def db(backend) -> Iterator[TestDatabase]:
    yield from _fresh(backend)


@pytest.fixture
def pg_db(pg_backend) -> Iterator[TestDatabase]:
    yield from _fresh(pg_backend)


@pytest.fixture
def settings_overrides() -> dict:
    """Override in a test module to change the app's settings."""
    return {}


@pytest.fixture
def app(db, settings_overrides):
    return create_app(make_settings(db.url, **settings_overrides), database=db.database)


@pytest.fixture
def session(db):
    with db.database.transaction() as session:
        yield session


@pytest.fixture
def world(app, db):
    """The demo program (stores, tiers, rewards, staff) and a client that speaks for any role."""
    return World.seed(app, db.database)


@pytest.fixture
def live_server(app):
    """The app served over real HTTP on 127.0.0.1 (a thread), for browsers and HTTP clients."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    # A short poll keeps shutdown quick; requests are served at once regardless.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (no browser download: executable_path).

    One browser for the run; each test opens its own context, so no state is shared."""
    chromium_path = os.environ.get("POINTCARD_CHROMIUM", "/usr/bin/chromium")
    require(os.path.exists(chromium_path), f"Chromium not found at {chromium_path} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        launched.close()


# --- outside services, played locally (tests/fakes/) -----------------------------------------


@pytest.fixture(scope="session")
def service_account_key() -> ServiceAccountKey:
    """The Google service account's RSA key: made once, it is slow to generate."""
    return ServiceAccountKey(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def fake_google(service_account_key) -> Iterator[FakeGoogle]:
    """Google's token endpoint, Wallet REST API, save page and callback keys on 127.0.0.1."""
    fake = FakeGoogle(service_account_key).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def apple_certs(tmp_path_factory) -> Path:
    """Throwaway Apple Wallet credentials (`flask wallet dev-certs`): a pass certificate, its
    CA and an APNs .p8 key."""
    directory = tmp_path_factory.mktemp("apple-certs")
    create_dev_credentials(make_settings("sqlite://", apple={"certs_dir": directory}))
    return directory


@pytest.fixture(scope="session")
def fake_apns(apple_certs, tmp_path_factory) -> Iterator[FakeApns]:
    """A local HTTP/2 APNs that accepts the provider tokens of `apple_certs`' key."""
    key = serialization.load_pem_private_key((apple_certs / "apns_key.p8").read_bytes(), password=None)
    apple = AppleWalletSettings()
    server = FakeApns(
        directory=tmp_path_factory.mktemp("fake-apns"),
        topic=apple.pass_type_id,
        team_id=apple.team_id,
        key_id=DEV_APNS_KEY_ID,
        public_key=key.public_key(),
    ).start()
    yield server
    server.stop()


@pytest.fixture
def apns(fake_apns) -> FakeApns:
    """The session's APNs, with nothing received and nothing scripted."""
    fake_apns.reset()
    return fake_apns
