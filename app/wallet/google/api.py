from flask import Blueprint

bp = Blueprint("google_wallet", __name__)
