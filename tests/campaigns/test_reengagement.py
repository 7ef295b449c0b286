"""A re-engagement sequence, driven by a clock of our own: lapse, step, step, a visit at the till, no more steps."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, insert, select

from app.campaigns.config import CampaignSettings
from app.campaigns.delivery import in_holdout
from app.campaigns.jobs import score_customers, tick
from app.campaigns.models import CampaignTarget, CustomerScore, Enrollment
from app.db import Base, utcnow
from app.loyalty.models import Channel, Consent, EntryKind, LedgerEntry
from app.messaging.models import Message
from app.roles import Role
from tests.campaigns.support import ALL_CONSENTS, backdate

SETTINGS = CampaignSettings(model_min_customers=10_000)


def _messages(world, customer_id: int) -> list[str]:
    with world.database.transaction() as session:
        return list(
            session.scalars(
                select(Message.channel)
                .where(Message.customer_id == customer_id, Message.template.like("campaign:%"))
                .order_by(Message.id)
            )
        )


def _enrollment(world, customer_id: int) -> Enrollment:
    with world.database.transaction() as session:
        found = session.scalar(select(Enrollment).where(Enrollment.customer_id == customer_id))
        session.expunge(found)
        return found


def _people(world, campaign_id: int) -> dict[str, dict]:
    """Enrol customers until there is a held-out one and two who are not (the holdout is a hash)."""
    people: dict[str, dict] = {}
    n = 0
    while len(people) < 3:
        n += 1
        card = world.enroll(f"Person {n}", phone=f"+14155550{n:03d}", consents=ALL_CONSENTS)
        held = in_holdout(campaign_id=campaign_id, customer_id=card["customer_id"], percent=50)
        role = "holdout" if held else ("ada" if "ada" not in people else "cy")
        people.setdefault(role, card)
    return people


def test_a_lapsing_customer_gets_the_steps_until_they_come_back(world):
    headers = world.headers(Role.marketer)
    # The sequence started four days ago; the till visit below happens now, on day 4.
    t0 = utcnow() - timedelta(days=4, hours=1)
    created = world.client.post(
        "/api/v1/campaigns", json={"name": "Win back", "kind": "reengagement", "holdout_percent": 50}, headers=headers
    )
    assert created.status_code == 201, created.get_json()
    campaign = created.get_json()
    assert [(s["day"], s["channels"], s["bonus_points"]) for s in campaign["steps"]] == [
        (0, ["wallet", "push"], 0),
        (3, ["sms"], 100),
        (10, ["voice"], 0),
    ]
    world.client.post(f"/api/v1/campaigns/{campaign['id']}/schedule", headers=headers)

    people = _people(world, campaign["id"])
    ada, cy, held = (people[name]["customer_id"] for name in ("ada", "cy", "holdout"))
    for customer_id in (ada, cy, held):  # weekly customers, last seen 20 days before t0
        backdate(world, customer_id, enrolled_days_ago=200, visits_days_ago=list(range(20, 150, 7)), now=t0)
    with world.database.transaction() as session:  # Their browsers subscribed to Web Push
        for customer_id in (ada, cy):
            session.execute(
                insert(Base.metadata.tables["push_subscriptions"]).values(
                    customer_id=customer_id,
                    endpoint=f"https://push.example/{customer_id}",
                    p256dh="k",
                    auth="a",
                    user_agent="",
                    created_at=t0,
                )
            )

    # Night of t0: all three are lapsing (20 days against a 7-day rhythm) and enrolled.
    score_customers(database=world.database, now=t0, settings=SETTINGS, force=True)
    for customer_id, holdout in ((ada, False), (cy, False), (held, True)):
        enrollment = _enrollment(world, customer_id)
        assert (enrollment.state, enrollment.holdout, enrollment.next_step_at) == ("active", holdout, t0)

    # Day 0: the first step. No card in Google Wallet, so a push; the holdout gets nothing.
    tick(database=world.database, now=t0, settings=SETTINGS)
    assert _messages(world, ada) == _messages(world, cy) == ["push"] and _messages(world, held) == []
    assert tick(database=world.database, now=t0 + timedelta(days=1), settings=SETTINGS)["steps"] == 0
    score_customers(database=world.database, now=t0 + timedelta(days=1), settings=SETTINGS, force=True)
    with world.database.transaction() as session:  # already in the sequence: not enrolled again
        assert session.scalar(select(func.count(Enrollment.id))) == 3
        # Cy answers STOP to everything after the first message.
        for channel in (Channel.sms, Channel.push, Channel.voice):
            session.add(
                Consent(
                    customer_id=cy, channel=channel, granted=False, source="STOP", recorded_at=t0 + timedelta(days=1)
                )
            )

    # Day 3: no visit yet, so the SMS with its bonus; Cy has withdrawn consent and gets nothing.
    assert tick(database=world.database, now=t0 + timedelta(days=3), settings=SETTINGS)["steps"] == 3
    assert _messages(world, ada) == ["push", "sms"] and _messages(world, cy) == ["push"]
    with world.database.transaction() as session:
        bonus = session.scalar(
            select(func.sum(LedgerEntry.points)).where(
                LedgerEntry.customer_id == ada,
                LedgerEntry.kind == EntryKind.bonus,
                LedgerEntry.reason == "campaign: Win back",
            )
        )
        assert bonus == 100

    # Day 4: Ada buys a coffee at the till. Her sequence stops and she is won back, right away.
    assert world.purchase(people["ada"]["barcode"], "4.50").status_code == 201
    enrollment = _enrollment(world, ada)
    assert enrollment.state == "won_back" and enrollment.returned_at > t0 + timedelta(days=4)
    with world.database.transaction() as session:
        assert (
            session.scalar(
                select(CustomerScore.status)
                .where(CustomerScore.customer_id == ada)
                .order_by(CustomerScore.as_of.desc())
                .limit(1)
            )
            == "won_back"
        )

    # Day 10: the voicemail goes to nobody: Ada came back, Cy withdrew, the holdout is held out.
    assert tick(database=world.database, now=t0 + timedelta(days=10), settings=SETTINGS)["steps"] == 2
    assert _messages(world, ada) == ["push", "sms"] and _messages(world, held) == []
    assert _enrollment(world, held).state == "completed" and _enrollment(world, cy).state == "completed"
    with world.database.transaction() as session:
        steps = session.execute(
            select(
                CampaignTarget.customer_id,
                CampaignTarget.step,
                CampaignTarget.holdout,
                CampaignTarget.channel,
                CampaignTarget.skip_reason,
            ).order_by(CampaignTarget.step, CampaignTarget.customer_id)
        ).all()
    assert [row for row in steps if row.customer_id == ada] == [
        (ada, 0, False, "push", None),
        (ada, 1, False, "sms", None),
    ]
    assert [row.step for row in steps if row.customer_id == held] == [0, 1, 2]
    assert all(row.holdout and row.channel is None for row in steps if row.customer_id == held)
    assert [(row.step, row.skip_reason) for row in steps if row.customer_id == cy] == [
        (0, None),
        (1, "no consented channel"),
        (2, "no consented channel"),
    ]

    # The next night agrees: Ada closed a 24-day gap against her 7-day rhythm.
    score_customers(database=world.database, now=utcnow() + timedelta(minutes=1), settings=SETTINGS, force=True)
    with world.database.transaction() as session:
        latest = session.scalar(select(func.max(CustomerScore.as_of)))
        statuses = dict(
            session.execute(
                select(CustomerScore.customer_id, CustomerScore.status).where(CustomerScore.as_of == latest)
            ).all()
        )
    assert statuses[ada] == "won_back" and statuses[held] == "lapsing"

    results = world.client.get(f"/api/v1/campaigns/{campaign['id']}/results", headers=headers).get_json()
    first, second, third = results["steps"]
    assert (first["targeted"], first["held_out"], first["queued"], first["opted_out"]) == (3, 1, 2, 1)
    assert (second["targeted"], second["held_out"], second["queued"]) == (3, 1, 1)
    assert second["suppressed"] == {"no consented channel": 1}
    assert (third["targeted"], third["held_out"], third["queued"]) == (2, 1, 0)
    total = results["total"]
    assert (total["targeted"], total["held_out"]) == (3, 1)
    assert total["treatment"] == {
        "customers": 2,
        "returned": 1,
        "return_rate": 0.5,
        "points_after": 45,
        "spend_after": "4.50",
        "redemptions_after": 0,
    }
    assert total["holdout"]["customers"] == 1 and total["holdout"]["returned"] == 0
    assert total["uplift"]["difference"] == 0.5 and total["uplift"]["low"] < 0.5 < total["uplift"]["high"]
    enrolled = world.client.get(f"/api/v1/campaigns/{campaign['id']}/enrollments", headers=headers).get_json()
    assert {e["customer_id"]: e["state"] for e in enrolled} == {ada: "won_back", cy: "completed", held: "completed"}
