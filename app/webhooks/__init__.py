"""Outgoing webhooks: signed event deliveries to endpoints the admins register.

Its receivers (loyalty, messaging and campaign events become deliveries in the same transaction),
session hooks and the outbox's "webhook" channel are connected in `app/wiring.py`.
"""
