from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class PrivacySettings(BaseModel):
    """Environment variables POINTCARD_PRIVACY__<FIELD>.

    KEYS is a JSON object of key id -> 32 random bytes in base64, e.g.
    POINTCARD_PRIVACY__KEYS='{"2026a": "..."}'. New values are encrypted with CURRENT_KEY_ID;
    older keys stay listed until `flask privacy rotate-key` has re-encrypted their values.
    INDEX_KEY (base64, 32 bytes) keys the blind index that equality lookups use; it cannot
    rotate without re-indexing, so it is separate from the encryption keys.
    Without them a development install keeps generated keys in instance/privacy_keys.json;
    production refuses to start.
    """

    keys: dict[str, SecretStr] = Field(default_factory=dict)
    current_key_id: str | None = None
    index_key: SecretStr | None = None
    # Rendered message bodies (names, offers) are blanked after this; the rows stay for counts.
    message_body_retention_days: int = Field(default=90, ge=1)
    rotate_batch_size: int = Field(default=500, ge=1, le=10_000)
