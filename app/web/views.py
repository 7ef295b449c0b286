from flask import Blueprint, render_template

# Not /static: the app's own static route (registered even without an app/static folder) owns
# /static/<path> and would answer 404 for these files.
bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/web/static")


@bp.get("/till")
def till():
    """The cashier's page: log in, scan or type a barcode, earn and redeem."""
    return render_template("till.html")
