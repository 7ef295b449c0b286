"""Tables of the webhooks package."""

from __future__ import annotations
