from __future__ import annotations

from pydantic import BaseModel, Field


class CampaignSettings(BaseModel):
    """Scoring, campaigns and re-engagement: environment variables POINTCARD_CAMPAIGNS__<FIELD>."""

    # Recency, frequency, money and the customer's rhythm are measured over this many days.
    window_days: int = Field(default=365, ge=7, le=3660)
    # Overdue factor (days since the last visit / the customer's rhythm) above which a customer
    # is lapsing, and above which they count as lapsed (beyond a nudge).
    lapsing_threshold: float = Field(default=2.0, gt=0)
    # The overdue factor from which a lapsing customer counts as lapsed.
    lapsed_threshold: float = Field(default=5.0, gt=0)
    # Customers enrolled this recently are "new" whatever their visits say.
    new_days: int = Field(default=30, ge=0)
    # How many gaps of the program's typical rhythm a customer's own median is blended with: a
    # median of one or two gaps is noise, a median of twenty is the customer.
    rhythm_prior_gaps: float = Field(default=3.0, ge=0)
    # The rhythm of a program with no repeat visits yet.
    fallback_gap_days: float = Field(default=30.0, gt=0)
    # p_return is the probability of a visit within this many days.
    return_horizon_days: int = Field(default=30, ge=1)
    # The BG/NBD fit uses a stable random sample of this many customers (the fit needs the
    # population's shape, not every row), and is skipped below the minimum.
    model_sample_size: int = Field(default=100_000, ge=100)
    # The fewest customers in the sample the fit runs on.
    model_min_customers: int = Field(default=200, ge=20)
    # Per-customer score rows older than this are deleted; the daily status counts stay.
    score_retention_days: int = Field(default=400, ge=1)
    # Local hour (program time zone) from which the nightly scoring runs.
    score_hour: int = Field(default=3, ge=0, le=23)
    # How often the scheduler looks for due campaign sends and sequence steps.
    tick_seconds: int = Field(default=60, ge=1)
    # Customers per transaction when a segment is expanded into outbox rows.
    batch_size: int = Field(default=500, ge=1, le=10_000)
    # A customer who went through a re-engagement sequence is not enrolled again for this long.
    reengagement_cooldown_days: int = Field(default=90, ge=0)
