from flask import Blueprint, render_template

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/static")


@bp.get("/till")
def till():
    """The cashier's page: log in, scan or type a barcode, earn and redeem."""
    return render_template("till.html")
