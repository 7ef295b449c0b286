"""Every table, imported once so Alembic and the tests see the whole schema."""

from app.audit import models as audit_models  # noqa: F401
from app.auth.models import StaffUser  # noqa: F401
from app.campaigns import models as campaign_models  # noqa: F401
from app.db import Base
from app.geo import models as geo_models  # noqa: F401
from app.idempotency import IdempotencyKey  # noqa: F401
from app.loyalty import models as loyalty_models  # noqa: F401
from app.messaging.models import (  # noqa: F401
    Message,
    PushSubscription,
    VoiceRecording,
)
from app.wallet import models as wallet_models  # noqa: F401
from app.wallet.apple import models as apple_wallet_models  # noqa: F401
from app.wallet.google import models as google_wallet_models  # noqa: F401
from app.webhooks import models as webhook_models  # noqa: F401

metadata = Base.metadata
