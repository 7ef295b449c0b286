"""Segments, campaigns and their sends through the API and the scheduler's tick, with a clock of our own."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, insert, select, update

from app.campaigns import service
from app.campaigns.config import CampaignSettings
from app.campaigns.delivery import in_holdout
from app.campaigns.jobs import tick
from app.campaigns.models import Campaign, CampaignRun, CampaignTarget, CustomerScore
from app.db import utcnow
from app.loyalty.models import (
    Channel,
    Consent,
    Customer,
    EntryKind,
    LedgerEntry,
    Program,
    Purchase,
    Redemption,
    Reward,
    Tier,
)
from app.messaging.models import Message, MessageState
from app.roles import Role
from tests.campaigns.support import ALL_CONSENTS, SETTINGS, backdate, broadcast


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    return response.get_json()


def marketer(world):
    return world.headers(Role.marketer)


def score_now(world, now: datetime, settings: CampaignSettings = SETTINGS) -> None:
    with world.database.transaction() as session:
        service.score_program(session=session, program=session.scalar(select(Program)), now=now, settings=settings)


# --- segments --------------------------------------------------------------------------------


@pytest.fixture
def shoppers(world):
    """Ada: weekly, lapsing, Gold, tagged vip, all consents, shops at store 1. Bob: a regular at store 2,
    SMS only. Cy: enrolled, never came, no consent."""
    now = utcnow()
    ada = world.enroll("Ada Lovelace", phone="+14155550101", consents=ALL_CONSENTS)
    bob = world.enroll("Bob Babbage", phone="+14155550102", consents={"sms": True})
    cy = world.enroll("Cy Clerk")
    backdate(world, ada["customer_id"], enrolled_days_ago=200, visits_days_ago=list(range(20, 150, 7)), now=now)
    backdate(world, bob["customer_id"], enrolled_days_ago=200, visits_days_ago=list(range(2, 150, 7)), now=now)
    backdate(world, cy["customer_id"], enrolled_days_ago=100, visits_days_ago=[], now=now)
    with world.database.transaction() as session:
        session.execute(
            update(Purchase).where(Purchase.customer_id == ada["customer_id"]).values(store_id=world.store_ids[0])
        )
        session.execute(
            update(Purchase).where(Purchase.customer_id == bob["customer_id"]).values(store_id=world.store_ids[1])
        )
        session.execute(
            update(Customer)
            .where(Customer.id == ada["customer_id"])
            .values(tier_id=world.tier_ids["Gold"], points_balance=900)
        )
    assert world.client.put(f"/api/v1/customers/{ada['customer_id']}/tags/VIP", headers=marketer(world)).get_json()[
        "tags"
    ] == ["vip"]
    score_now(world, now)
    return {"ada": ada["customer_id"], "bob": bob["customer_id"], "cy": cy["customer_id"]}


RULES_AND_MATCHES = [
    ({"field": "status", "op": "eq", "value": "lapsing"}, {"ada"}),
    ({"field": "status", "op": "in", "value": ["active", "lapsed"]}, {"bob", "cy"}),
    ({"not": {"field": "status", "op": "eq", "value": "lapsing"}}, {"bob", "cy"}),
    ({"field": "tier", "op": "in", "value": ["Gold"]}, {"ada"}),
    ({"field": "tier", "op": "ne", "value": "Gold"}, {"bob", "cy"}),
    ({"field": "points", "op": "between", "value": [500, 1000]}, {"ada"}),
    ({"field": "r_score", "op": "gte", "value": 3}, {"bob"}),  # two ranked: scores 1 and 1 + 5 * 1 // 2
    ({"field": "f_score", "op": "gte", "value": 1}, {"ada", "bob"}),
    ({"field": "days_since_visit", "op": "gt", "value": 14}, {"ada"}),
    ({"field": "visits", "op": "gte", "value": 20}, {"bob"}),
    ({"field": "visits", "op": "gte", "value": 1, "within_days": 10}, {"bob"}),
    ({"field": "spend", "op": "gt", "value": 50}, {"ada", "bob"}),
    ({"field": "spend", "op": "lt", "value": 1, "within_days": 10}, {"ada", "cy"}),
    ({"field": "overdue", "op": "gt", "value": 2}, {"ada"}),
    ({"field": "store", "op": "eq", "value": "STORE0"}, {"ada"}),
    ({"field": "store", "op": "not_in", "value": ["STORE0"]}, {"bob", "cy"}),
    ({"field": "distance_km", "op": "lte", "value": 1, "store_id": "STORE1"}, {"bob"}),
    ({"field": "distance_km", "op": "lte", "value": 50, "latitude": 45.52, "longitude": -122.68}, {"ada", "bob"}),
    ({"field": "consent", "channel": "push", "op": "eq", "value": True}, {"ada"}),
    ({"field": "consent", "channel": "sms", "op": "eq", "value": False}, {"cy"}),
    ({"field": "enrolled", "op": "lt", "value": "TODAY-150"}, {"ada", "bob"}),
    ({"field": "tag", "op": "in", "value": ["vip", "gold"]}, {"ada"}),
    ({"field": "tag", "op": "not_in", "value": ["vip"]}, {"bob", "cy"}),
    (
        {
            "any": [
                {"field": "tag", "op": "eq", "value": "vip"},
                {"field": "consent", "channel": "sms", "op": "eq", "value": True},
            ]
        },
        {"ada", "bob"},
    ),
]


def _fill(rule, world):
    """Put the world's store ids and dates into a rule written with placeholders."""
    stores = {f"STORE{i}": store_id for i, store_id in enumerate(world.store_ids)}
    if isinstance(rule, dict):
        return {k: _fill(v, world) for k, v in rule.items()}
    if isinstance(rule, list):
        return [_fill(v, world) for v in rule]
    if isinstance(rule, str) and rule.startswith("TODAY-"):
        return (utcnow() - timedelta(days=int(rule[6:]))).date().isoformat()
    return stores.get(rule, rule) if isinstance(rule, str) else rule


def test_every_rule_field_selects_the_right_customers(world, shoppers):
    names = {customer_id: name for name, customer_id in shoppers.items()}
    for rule, expected in RULES_AND_MATCHES:
        response = world.client.post(
            "/api/v1/segments/preview", json={"rules": _fill(rule, world)}, headers=marketer(world)
        )
        assert response.status_code == 200, (rule, response.get_json())
        body = response.get_json()
        assert {names[row["id"]] for row in body["sample"]} == expected, rule
        assert body["count"] == len(expected)


def test_a_saved_segment_previews_its_count_and_a_sample(world, shoppers):
    rules = {
        "all": [
            {"field": "status", "op": "in", "value": ["lapsing", "active"]},
            {"field": "consent", "channel": "sms", "op": "eq", "value": True},
        ]
    }
    created = world.client.post("/api/v1/segments", json={"name": "Texts", "rules": rules}, headers=marketer(world))
    assert created.status_code == 201
    preview = world.client.get(f"/api/v1/segments/{created.get_json()['id']}/preview", headers=marketer(world))
    body = preview.get_json()
    assert body["count"] == 2 and body["scored_as_of"] is not None
    assert [row["first_name"] for row in body["sample"]] == ["Bob", "Ada"]
    assert body["sample"][1]["status"] == "lapsing" and body["sample"][1]["tier"] == "Gold"


@pytest.mark.parametrize(
    ("rules", "where", "says"),
    [
        (
            {
                "all": [
                    {"field": "points", "op": "gte", "value": 1},
                    {"field": "tier", "op": "in", "value": ["Platinum"]},
                ]
            },
            "rules.all[1].value",
            "unknown tier 'Platinum'",
        ),
        ({"any": [{"field": "colour", "op": "eq", "value": "red"}]}, "rules.any[0].field", "unknown field 'colour'"),
        ({"field": "points", "op": "like", "value": 3}, "rules.op", "takes the operators"),
        ({"field": "points", "op": "gte", "value": "many"}, "rules.value", "expected a number"),
        ({"field": "r_score", "op": "eq", "value": 6}, "rules.value", "between 1 and 5"),
        ({"field": "status", "op": "eq", "value": "sleepy"}, "rules.value", "unknown status 'sleepy'"),
        ({"field": "consent", "channel": "fax", "op": "eq", "value": True}, "rules.channel", "unknown channel"),
        ({"field": "enrolled", "op": "lt", "value": "last tuesday"}, "rules.value", "ISO date"),
        ({"not": {"all": []}}, "rules.not.all", "non-empty list"),
        ({"all": [{"field": "store", "op": "eq", "value": 9999}]}, "rules.all[0].value", "no store 9999"),
        ([1, 2], "rules", "a rule is an object"),
    ],
)
def test_an_invalid_rule_is_a_422_naming_it(world, rules, where, says):
    body = problem(world.client.post("/api/v1/segments/preview", json={"rules": rules}, headers=marketer(world)), 422)
    if isinstance(rules, list):  # not even an object: the body's schema says so
        assert body["errors"][0]["field"] == "rules"
        return
    assert body["rule"] == where and says in body["detail"] and where in body["detail"]
    assert body["errors"] == [{"field": where, "message": body["detail"].split(": ", 1)[1], "type": "invalid_rule"}]
    problem(world.client.post("/api/v1/segments", json={"name": "x", "rules": rules}, headers=marketer(world)), 422)


# --- campaign lifecycle ----------------------------------------------------------------------


def test_a_campaign_is_scheduled_paused_resumed_and_cancelled(world):
    headers = marketer(world)
    created = world.client.post("/api/v1/campaigns", json=broadcast(), headers=headers)
    assert created.status_code == 201, created.get_json()
    campaign = created.get_json()
    assert campaign["state"] == "draft" and campaign["next_run_at"] is None and campaign["segment_id"]
    assert campaign["templates"]["push"] == {"body": "Hi {{ first_name }}, {{ bonus_points }} points for you"}
    path = f"/api/v1/campaigns/{campaign['id']}"
    scheduled = world.client.post(f"{path}/schedule", headers=headers).get_json()
    assert scheduled["state"] == "scheduled" and scheduled["next_run_at"] == campaign["send_at"]
    problem(world.client.post(f"{path}/resume", headers=headers), 409)
    problem(world.client.patch(path, json={"name": "Summer"}, headers=headers), 409)
    assert world.client.post(f"{path}/pause", headers=headers).get_json()["state"] == "paused"
    assert world.client.patch(path, json={"name": "Summer"}, headers=headers).get_json()["name"] == "Summer"
    assert world.client.post(f"{path}/resume", headers=headers).get_json()["state"] == "scheduled"
    cancelled = world.client.post(f"{path}/cancel", headers=headers).get_json()
    assert cancelled["state"] == "cancelled" and cancelled["next_run_at"] is None
    body = problem(world.client.post(f"{path}/schedule", headers=headers), 409)
    assert "cancelled" in body["detail"]
    listed = world.client.get("/api/v1/campaigns?state=cancelled", headers=headers).get_json()
    assert [c["name"] for c in listed] == ["Summer"]


def test_a_cron_campaign_runs_in_the_programs_time_zone_and_shows_in_the_calendar(world):
    headers = marketer(world)
    campaign = world.client.post(
        "/api/v1/campaigns", json=broadcast(send_at=None, cron="0 9 * * 1"), headers=headers
    ).get_json()
    scheduled = world.client.post(f"/api/v1/campaigns/{campaign['id']}/schedule", headers=headers).get_json()
    assert scheduled["timezone"] == "America/Los_Angeles"
    at = datetime.fromisoformat(scheduled["next_run_at"])
    local = at.astimezone(__import__("zoneinfo").ZoneInfo("America/Los_Angeles"))
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0) and at > utcnow()
    start = (utcnow() + timedelta(days=1)).date()  # 28 days to come: four of each weekday
    calendar = world.client.get(f"/api/v1/campaigns/calendar?start={start}&days=28", headers=headers).get_json()
    mondays = [datetime.fromisoformat(entry["at"]) for entry in calendar if entry["campaign_id"] == campaign["id"]]
    assert len(mondays) == 4 and all(b - a == timedelta(weeks=1) for a, b in itertools.pairwise(mondays))
    assert all(not entry["sent"] for entry in calendar)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cron": "every tuesday"}, "cron"),
        ({"templates": {"wallet": "x", "push": "Hi {{ first_name", "sms": "ok"}}, "templates.push"),
        ({"templates": {"wallet": "x", "push": "Hi {{ unknown_thing }}", "sms": "ok"}}, "templates.push"),
        ({"reward_id": 9999}, "reward_id"),
        ({"segment_id": 9999, "rules": None}, "segment_id"),
    ],
)
def test_a_campaign_that_could_not_be_sent_is_refused_at_once(world, change, field):
    body = {**broadcast(), **change}
    if change.get("cron"):
        body["send_at"] = None
    answer = problem(world.client.post("/api/v1/campaigns", json=body, headers=marketer(world)), 422)
    assert answer.get("field") == field, answer


def test_campaign_routes_are_for_marketers_and_admins(world):
    for role in (Role.cashier, Role.customer):
        problem(world.client.get("/api/v1/campaigns", headers=world.headers(role, customer_id=1)), 403)
    assert world.client.get("/api/v1/campaigns", headers=world.headers(Role.admin)).status_code == 200


# --- sending ---------------------------------------------------------------------------------


def _messages(world) -> dict[int, list[tuple[str, dict]]]:
    with world.database.transaction() as session:
        rows = session.execute(
            select(Message.customer_id, Message.channel, Message.content)
            .where(Message.template.like("campaign:%"))
            .order_by(Message.id)
        ).all()
    found: dict[int, list] = {}
    for customer_id, channel, content in rows:
        found.setdefault(customer_id, []).append((channel, content))
    return found


def test_a_due_send_expands_the_segment_into_the_outbox_once_in_batches(world, shoppers):
    headers = marketer(world)
    extra = [
        world.enroll(f"Extra {i}", phone=f"+1415555020{i}", consents={"sms": True})["customer_id"] for i in range(3)
    ]
    campaign = world.client.post(
        "/api/v1/campaigns", json=broadcast(holdout_percent=40, bonus_points=25), headers=headers
    ).get_json()
    world.client.post(f"/api/v1/campaigns/{campaign['id']}/schedule", headers=headers)
    due = datetime.fromisoformat(campaign["send_at"])
    assert tick(database=world.database, now=due - timedelta(minutes=1), settings=SETTINGS)["started"] == 0
    result = tick(database=world.database, now=due + timedelta(seconds=30), settings=SETTINGS)
    assert result == {"started": 1, "runs": 1, "steps": 0}
    assert tick(database=world.database, now=due + timedelta(minutes=1), settings=SETTINGS)["started"] == 0

    everyone = [*shoppers.values(), *extra]
    held = {c for c in everyone if in_holdout(campaign_id=campaign["id"], customer_id=c, percent=40)}
    assert 0 < len(held) < len(everyone)  # stable per customer and campaign, and both groups exist here
    with world.database.transaction() as session:
        targets = {t.customer_id: t for t in session.scalars(select(CampaignTarget))}
        run = session.scalar(select(CampaignRun))
        assert session.get(Campaign, campaign["id"]).state == "completed"
        bonus = dict(
            session.execute(
                select(LedgerEntry.customer_id, func.sum(LedgerEntry.points))
                .where(LedgerEntry.kind == EntryKind.bonus, LedgerEntry.reason == "campaign: Spring")
                .group_by(LedgerEntry.customer_id)
            ).all()
        )
    assert set(targets) == set(everyone) and run.targeted == len(everyone) and run.state == "done"
    assert {c for c, t in targets.items() if t.holdout} == held
    messages = _messages(world)
    assert set(messages) == {c for c in everyone if c not in held and c != shoppers["cy"]}
    for sent in messages.values():
        assert len(sent) == 1  # one message each, on their first reachable channel
    if shoppers["ada"] not in held:  # all consents, but no Google Wallet card and no push subscription
        assert messages[shoppers["ada"]][0][0] == "sms"
    if shoppers["cy"] not in held:
        assert targets[shoppers["cy"]].skip_reason == "no consented channel"
    assert set(bonus) == set(messages) and set(bonus.values()) == {25}  # only those messaged


def test_a_send_whose_segment_stopped_compiling_pauses_its_campaign_and_the_others_go_on(world, shoppers):
    headers = marketer(world)
    gold = world.client.post(
        "/api/v1/campaigns",
        json=broadcast(name="Gold only", rules={"field": "tier", "op": "in", "value": ["Gold"]}),
        headers=headers,
    ).get_json()
    everyone = world.client.post("/api/v1/campaigns", json=broadcast(name="Everyone"), headers=headers).get_json()
    for campaign in (gold, everyone):
        assert world.client.post(f"/api/v1/campaigns/{campaign['id']}/schedule", headers=headers).status_code == 200
    with world.database.transaction() as session:  # the tier is renamed after the segment was saved
        tier = session.scalar(select(Tier).where(Tier.name == "Gold"))
        tier.name = "Platinum"
    due = datetime.fromisoformat(everyone["send_at"]) + timedelta(seconds=30)
    assert tick(database=world.database, now=due, settings=SETTINGS)["runs"] == 2
    paused = world.client.get(f"/api/v1/campaigns/{gold['id']}", headers=headers).get_json()
    assert paused["state"] == "paused" and "unknown tier 'Gold'" in paused["paused_reason"]
    assert world.client.get(f"/api/v1/campaigns/{everyone['id']}", headers=headers).get_json()["state"] == "completed"
    assert _messages(world)  # the other campaign was sent
    # A paused send is not retried every tick; resumed, it goes on and the reason is cleared.
    assert tick(database=world.database, now=due + timedelta(minutes=1), settings=SETTINGS)["runs"] == 1
    with world.database.transaction() as session:
        session.scalar(select(Tier).where(Tier.name == "Platinum")).name = "Gold"
    resumed = world.client.post(f"/api/v1/campaigns/{gold['id']}/resume", headers=headers).get_json()
    assert resumed["state"] == "scheduled" and resumed["paused_reason"] is None
    tick(database=world.database, now=due + timedelta(minutes=2), settings=SETTINGS)
    assert world.client.get(f"/api/v1/campaigns/{gold['id']}", headers=headers).get_json()["state"] == "completed"


def test_results_count_what_the_outbox_did_and_returns_against_the_holdout(world, shoppers):
    headers = marketer(world)
    for i in range(6):
        world.enroll(f"More {i}", phone=f"+1415555030{i}", consents={"sms": True})
    campaign = world.client.post("/api/v1/campaigns", json=broadcast(holdout_percent=30), headers=headers).get_json()
    world.client.post(f"/api/v1/campaigns/{campaign['id']}/schedule", headers=headers)
    sent_at = datetime.fromisoformat(campaign["send_at"]) + timedelta(seconds=1)
    tick(database=world.database, now=sent_at, settings=SETTINGS)
    with world.database.transaction() as session:
        targets = list(session.scalars(select(CampaignTarget).order_by(CampaignTarget.customer_id)))
        messaged = [t for t in targets if t.message_id]
        held = [t for t in targets if t.holdout]
        # What the workers made of them (their own tests cover how): one of each outcome.
        outcomes = [
            (MessageState.delivered, None),
            (MessageState.failed, None),
            (MessageState.suppressed, "quiet hours"),
            (MessageState.sent, None),
        ]
        for target, (state, reason) in zip(messaged[: len(outcomes)], outcomes, strict=True):
            session.execute(update(Message).where(Message.id == target.message_id).values(state=state, reason=reason))
        # The first two messaged and one held-out customer come back within the window, one after it.
        for target, days in ((messaged[0], 2), (messaged[1], 5), (held[0], 3), (messaged[2], 20)):
            session.execute(
                insert(Purchase).values(
                    customer_id=target.customer_id,
                    amount=Decimal("10.00"),
                    currency="USD",
                    points_earned=0,
                    refunded_amount=0,
                    points_reversed=0,
                    created_at=sent_at + timedelta(days=days),
                )
            )
        session.add(
            Consent(
                customer_id=messaged[3].customer_id,
                channel=Channel.sms,
                granted=False,
                source="STOP",
                recorded_at=sent_at + timedelta(days=1),
            )
        )
        reward_id = session.scalar(select(Reward.id).limit(1))
        for target, days in ((messaged[0], 2), (messaged[1], 30), (held[0], 4)):  # the second is too late
            session.add(
                Redemption(
                    customer_id=target.customer_id,
                    reward_id=reward_id,
                    points=0,
                    code=f"R-{target.customer_id}",
                    created_at=sent_at + timedelta(days=days),
                )
            )
    results = world.client.get(f"/api/v1/campaigns/{campaign['id']}/results?days=14", headers=headers).get_json()
    total = results["total"]
    assert total["targeted"] == len(targets) == 9 and total["held_out"] == len(held)
    assert (total["delivered"], total["failed"], total["sent"]) == (1, 1, 2)
    assert total["suppressed"]["quiet hours"] == 1
    assert total["queued"] == len(messaged) - 4
    assert total["opted_out"] == 1
    assert total["treatment"]["returned"] == 2 and total["holdout"]["returned"] == 1
    assert total["treatment"]["spend_after"] == "20.00" and total["holdout"]["spend_after"] == "10.00"
    assert total["treatment"]["redemptions_after"] == 1 and total["holdout"]["redemptions_after"] == 1
    assert total["treatment"]["customers"] == len(targets) - len(held)
    uplift = total["uplift"]
    expected = 2 / total["treatment"]["customers"] - 1 / len(held)
    assert uplift["difference"] == pytest.approx(expected) and uplift["low"] < expected < uplift["high"]
    assert results["window_complete"] is False
    skipped = sum(1 for t in targets if t.skip_reason)
    assert total["suppressed"].get("no consented channel", 0) == skipped


def test_a_send_interrupted_between_batches_carries_on_without_repeating(world, shoppers):
    headers = marketer(world)
    for i in range(3):
        world.enroll(f"Extra {i}", phone=f"+1415555040{i}", consents={"sms": True})
    campaign = world.client.post("/api/v1/campaigns", json=broadcast(), headers=headers).get_json()
    world.client.post(f"/api/v1/campaigns/{campaign['id']}/schedule", headers=headers)
    now = datetime.fromisoformat(campaign["send_at"])
    with world.database.transaction() as session:
        [run_id] = service.start_due_runs(session=session, now=now)
    with world.database.transaction() as session:  # one batch of two, then the process "dies"
        assert service.send_run_batch(session=session, run_id=run_id, now=now, settings=SETTINGS) is False
    # A pause stops the send between batches; after resume the next tick finishes it.
    world.client.post(f"/api/v1/campaigns/{campaign['id']}/pause", headers=headers)
    tick(database=world.database, now=now + timedelta(minutes=1), settings=SETTINGS)
    with world.database.transaction() as session:
        assert session.scalar(select(func.count(CampaignTarget.id))) == 2
    world.client.post(f"/api/v1/campaigns/{campaign['id']}/resume", headers=headers)
    tick(database=world.database, now=now + timedelta(minutes=2), settings=SETTINGS)
    with world.database.transaction() as session:
        customers = session.scalars(select(CampaignTarget.customer_id)).all()
        assert sorted(customers) == sorted(session.scalars(select(Customer.id)).all())
        assert session.scalar(select(CampaignRun.state)) == "done"
        assert session.scalar(
            select(func.count(Message.id)).where(Message.template.like("campaign:%"))
        ) == session.scalar(select(func.count(CampaignTarget.id)).where(CampaignTarget.message_id.is_not(None)))


def test_scores_and_trends_for_the_dashboard(world, shoppers):
    headers = marketer(world)
    trend = world.client.get("/api/v1/scores/trend?days=30", headers=headers).get_json()
    [night] = trend["statuses"]
    assert night["counts"] == {"lapsing": 1, "active": 1, "lapsed": 1}
    assert sum(day["customers"] for day in trend["enrollments"]) == 0  # all three were enrolled long ago
    history = world.client.get(f"/api/v1/customers/{shoppers['ada']}/scores", headers=headers).get_json()
    assert history[0]["status"] == "lapsing" and history[0]["overdue_factor"] > 2
    with world.database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(CustomerScore)) == 3
