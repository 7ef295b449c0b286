"""Phone wallets: Apple Wallet passes and Google Wallet loyalty objects.

Each subpackage turns loyalty events (a changed balance, tier or card) into outbox rows (pushes,
object patches), so the till never waits on Apple or Google; `app/wiring.py` connects them.
"""
