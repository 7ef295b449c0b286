"""Apple Wallet: signed storeCard passes, the PassKit web service, and APNs pushes on change.

Its receivers, session hooks and the outbox channel that carries the pushes are connected in
`app/wiring.py`.
"""
