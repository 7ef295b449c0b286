"""Campaigns: nightly customer scoring, segments, scheduled campaigns and re-engagement sequences.

Kept import-free: app.config imports this package's settings, so nothing here may pull in models.
"""
