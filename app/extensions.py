"""Handles on the app's shared objects, for code that runs inside a request."""

from __future__ import annotations

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import Database

limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


def get_settings() -> Settings:
    return current_app.extensions["settings"]


def get_db() -> Database:
    return current_app.extensions["database"]


def get_session() -> Session:
    return get_db().session()
