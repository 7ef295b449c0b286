from __future__ import annotations

from pydantic import Field

from app.encryption import EncryptionKeys


class PrivacySettings(EncryptionKeys):
    """Environment variables POINTCARD_PRIVACY__<FIELD>: the contact fields' keys (see
    `app.encryption.EncryptionKeys`) and how long personal data is kept."""

    # Rendered message bodies (names, offers) are blanked after this; the rows stay for counts.
    message_body_retention_days: int = Field(default=90, ge=1)
    # Rows `flask privacy rotate-key` re-encrypts per transaction.
    rotate_batch_size: int = Field(default=500, ge=1, le=10_000)
