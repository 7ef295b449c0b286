"""Google Wallet: a LoyaltyClass per program, a LoyaltyObject per card, kept current.

Its receivers (balance and tier changes queue object patches) and the outbox's "google_wallet"
channel are connected in `app/wiring.py`.
"""
