"""The marketer dashboard page, /dashboard: a static page; its script logs in and calls the API.

The template and assets live with the other pages in app/web (dashboard.html, dashboard.js,
dashboard.css, and the vendored Chart.js under static/vendor).
"""

from __future__ import annotations

from flask import Blueprint, render_template

from app.web.views import secure_pages

bp = secure_pages(Blueprint("dashboard", __name__))


@bp.get("/dashboard")
def dashboard():
    """Campaigns, their calendar and results, and the customer trends (marketer or admin login)."""
    return render_template("dashboard.html")
