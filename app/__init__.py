"""Pointcard: a loyalty points card in the customer's phone wallet."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from sqlalchemy import text
from werkzeug.exceptions import NotFound
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from app.auth.abuse import register_security_headers
from app.config import INSTANCE_DIR, Settings
from app.db import Database
from app.errors import register_error_handlers
from app.extensions import EXTENSION, limiter


class RowIdConverter(IntegerConverter):
    """`<int:...>` in every route: an id no Integer key can hold (past 2**31 - 1 on PostgreSQL) is
    a 404, not a number the database refuses to bind.

    (Not `max=`: a converter refusing a value makes werkzeug answer 405 when the path fits another
    method's route.)"""

    def to_python(self, value: str) -> int:
        number = super().to_python(value)
        if number > 2**31 - 1:
            raise NotFound("No row has an id that large.")
        return number


def create_app(settings: Settings | None = None, database: Database | None = None) -> Flask:
    """The web application over the parts `app.wiring.build` assembles (settings from the
    environment unless given; a database of its own unless given)."""
    # Here, not at the top: this package's __init__ runs on any import of app.*, and the wiring
    # imports every domain (as do the blueprints and commands below).
    from app import wiring

    services = wiring.build(settings, database)
    settings = services.settings
    app = Flask(__name__, instance_path=str(INSTANCE_DIR))
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    app.config["RATELIMIT_STORAGE_URI"] = settings.redis_url or "memory://"
    app.config["RATELIMIT_ENABLED"] = settings.rate_limits_enabled
    if settings.redis_url:
        app.config["RATELIMIT_STORAGE_OPTIONS"] = {"key_prefix": settings.rate_limit_key_prefix}
    app.extensions[EXTENSION] = services
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops, x_host=settings.proxy_hops
        )
    limiter.init_app(app)
    register_security_headers(app)
    register_error_handlers(app)
    app.url_map.converters["int"] = RowIdConverter
    _register_blueprints(app)
    _register_cli(app)

    @app.teardown_appcontext
    def _remove_session(_exc):
        services.database.session.remove()

    @app.get("/healthz")
    def healthz():
        try:
            services.database.session.execute(text("SELECT 1"))
        except Exception as exc:  # the probe reports, it does not raise
            logging.getLogger(__name__).error("health check failed: %s", exc)
            return jsonify(status="error", database="unreachable"), 503
        return jsonify(status="ok", database="ok")

    return app


def _register_blueprints(app: Flask) -> None:
    from app.audit.api import bp as audit_bp
    from app.auth.api import bp as auth_bp
    from app.campaigns.api import bp as campaigns_bp
    from app.campaigns.dashboard import bp as dashboard_bp
    from app.geo.api import bp as geo_bp
    from app.loyalty.api import bp as loyalty_bp
    from app.messaging.api import bp as messaging_bp
    from app.openapi import bp as openapi_bp
    from app.pos.api import bp as pos_bp
    from app.privacy.api import bp as privacy_bp
    from app.wallet.apple.api import bp as apple_bp
    from app.wallet.google.api import bp as google_bp
    from app.web.views import bp as web_bp
    from app.webhooks.api import bp as webhooks_bp

    for blueprint in (
        auth_bp,
        loyalty_bp,
        pos_bp,
        openapi_bp,
        web_bp,
        apple_bp,
        google_bp,
        messaging_bp,
        campaigns_bp,
        dashboard_bp,
        geo_bp,
        privacy_bp,
        audit_bp,
        webhooks_bp,
    ):
        app.register_blueprint(blueprint)


def _register_cli(app: Flask) -> None:
    from app.audit.cli import audit_cli
    from app.auth.cli import users_cli
    from app.campaigns.cli import campaigns_cli
    from app.db_cli import db_cli
    from app.demo.cli import demo_cli
    from app.events_cli import events_cli
    from app.geo.cli import geo_cli
    from app.loyalty.cli import loyalty_cli
    from app.messaging.cli import messaging_cli
    from app.privacy.cli import privacy_cli
    from app.scheduler_cli import scheduler_cli
    from app.wallet.cli import wallet_cli
    from app.webhooks.cli import webhooks_cli

    for group in (
        events_cli,
        users_cli,
        db_cli,
        demo_cli,
        loyalty_cli,
        messaging_cli,
        scheduler_cli,
        wallet_cli,
        campaigns_cli,
        geo_cli,
        privacy_cli,
        audit_cli,
        webhooks_cli,
    ):
        app.cli.add_command(group)
