"""Outgoing webhooks: signed event deliveries to endpoints the admins register."""
