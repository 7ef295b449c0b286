"""Phone wallets: Apple Wallet passes and Google Wallet loyalty objects.

Each subpackage subscribes to the loyalty events at import time and turns a changed balance
or tier into outbox rows (pushes, object patches), so the till never waits on Apple or Google.
"""
