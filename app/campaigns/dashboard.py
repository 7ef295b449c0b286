"""The marketer dashboard page, /dashboard: a static page; its script logs in and calls the API.

The template and assets live with the other pages in app/web (dashboard.html, dashboard.js,
dashboard.css, and the vendored Chart.js under static/vendor).
"""

from __future__ import annotations

from flask import Blueprint, render_template

from app.web.views import PAGE_SECURITY_HEADERS

bp = Blueprint("dashboard", __name__)


@bp.after_request
def _security_headers(response):
    for name, value in PAGE_SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


@bp.get("/dashboard")
def dashboard():
    """Campaigns, their calendar and results, and the customer trends (marketer or admin login)."""
    return render_template("dashboard.html")
