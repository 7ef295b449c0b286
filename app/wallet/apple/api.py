from flask import Blueprint

bp = Blueprint("apple_wallet", __name__)
