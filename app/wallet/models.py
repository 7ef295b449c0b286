from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class WalletRefresh(Base):
    """Every wallet card of a program must show new offer texts: done by a job in batches, after
    the offer's own transaction (a program with a million cards cannot refresh them in a request)."""

    __tablename__ = "geo_wallet_refreshes"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The last card id refreshed: a crash resumes after it.
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
