"""Seeded, realistic sample data, so that examples, docs and benchmarks run on a fresh clone.

The same ``seed`` always yields the same pipeline (``random.Random(seed)``; no global state), and
every amount is built from integers, never from floats.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.domain.stages import StagePlan
from salesflow.errors import ValidationError

__all__ = ["INDUSTRIES", "REGIONS", "generate_pipeline", "sample_owners"]

INDUSTRIES = (
    "manufacturing",
    "retail",
    "healthcare",
    "education",
    "finance",
    "logistics",
    "energy",
    "software",
)
"""Industries of the sample customers."""

REGIONS = ("Beijing", "Shanghai", "Guangzhou", "Shenzhen", "Chengdu", "Hangzhou")
"""Regions of the sample customers."""

_FIRST = ("Li", "Wang", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu", "Xu", "Sun")
_GIVEN = ("Wei", "Fang", "Na", "Min", "Jing", "Lei", "Yan", "Jun", "Tao", "Hui", "Ping", "Qiang")
_ACCOUNT_STEMS = ("Hua", "Zhong", "Xin", "Tian", "Jin", "Long", "Hong", "Da", "Feng", "An")
_ACCOUNT_TAILS = ("tech", "mart", "medical", "edu", "capital", "freight", "power", "soft")
_PRODUCTS = ("CRM seats", "ERP rollout", "Support plan", "Data platform", "Training", "Hardware")

# Share of opportunities per stage of the default plan, in per mille.
_STAGE_MIX = {
    "initial_contact": 250,
    "needs_analysis": 220,
    "intent_confirmed": 170,
    "quotation": 140,
    "won": 130,
    "lost": 90,
}

# Why the sample's lost deals were lost (weights), with a note on some of them.
_LOST_REASON_MIX = {
    "price": 28,
    "competitor": 22,
    "no_budget": 15,
    "no_decision": 13,
    "timing": 10,
    "product_fit": 8,
    "other": 4,
}
_LOST_NOTES = {
    "price": "Asked for a discount beyond our floor",
    "competitor": "Went with the incumbent supplier",
    "no_budget": "Budget frozen until next fiscal year",
    "no_decision": "Project shelved after a reorganisation",
    "timing": "Wants to revisit in two quarters",
    "product_fit": "Needs an on-premises deployment",
    "other": "Customer acquired by a group with its own CRM",
}


def sample_owners(count: int, *, teams: int = 2) -> list[tuple[str, str]]:
    """``count`` sample reps as (owner, team) pairs, spread evenly over ``teams`` teams."""
    if count < 1 or teams < 1:
        raise ValidationError("count", count, "at least one owner and one team")
    owners = []
    for i in range(count):
        # (i + 7j) mod 12 walks every given name once per family name: the first 144 are unique.
        given = (i // len(_FIRST) + 7 * (i % len(_FIRST))) % len(_GIVEN)
        name = f"{_FIRST[i % len(_FIRST)]} {_GIVEN[given]}"
        if i >= len(_FIRST) * len(_GIVEN):
            name += f" {i // (len(_FIRST) * len(_GIVEN)) + 1}"
        owners.append((name, f"team-{i % teams + 1}"))
    return owners


def generate_pipeline(
    n: int = 240,
    *,
    seed: int = 2026,
    as_of: date = date(2026, 11, 26),
    owners: int | Sequence[tuple[str, str]] = 8,
    teams: int = 2,
    months: int = 6,
    currency: str = "CNY",
    with_history: bool = True,
) -> list[Opportunity]:
    """A realistic pipeline of ``n`` opportunities in the default stage plan.

    Open deals are expected to close from two months before ``as_of`` (some have slipped) to
    ``months`` months after it, about 4 % have no expected close date; won and lost deals closed
    in the past. Amounts run from 10,000 to about 1,000,000 in ``currency``, in whole units with an
    occasional odd cent. With ``with_history`` each opportunity carries the stage moves that led to
    its stage, and each lost deal's last move says why it was lost (a reason of the default plan,
    sometimes with a note); without history a lost deal has no recorded reason.
    """
    if n < 0:
        raise ValidationError("n", n, "zero or more")
    if months < 1:
        raise ValidationError("months", months, "at least 1")
    rng = random.Random(seed)
    # A stream of its own, so that the reasons leave every other figure of a seed as it was.
    why = random.Random(f"{seed}-lost-reasons")
    people = sample_owners(owners, teams=teams) if isinstance(owners, int) else list(owners)
    plan = StagePlan.default()
    open_keys = [s.key for s in plan.open_stages]
    stages = list(_STAGE_MIX)
    weights = list(_STAGE_MIX.values())
    first_month = date(as_of.year, as_of.month, 1)
    result = []
    for i in range(n):
        owner, team = people[rng.randrange(len(people))]
        stage = rng.choices(stages, weights)[0]
        account = (
            f"{rng.choice(_ACCOUNT_STEMS)}{rng.choice(_ACCOUNT_STEMS).lower()}"
            f" {rng.choice(_ACCOUNT_TAILS)}"
        )
        units = rng.randrange(20, 2000) * 500
        cents = rng.randrange(100) if rng.randrange(10) == 0 else 0
        amount = Money(Decimal(units * 100 + cents).scaleb(-2), currency)
        if stage in open_keys:
            expected: date | None = None
            if rng.randrange(100) >= 4:
                offset = rng.randrange(-2, months)
                month = first_month.month - 1 + offset
                expected = date(
                    first_month.year + month // 12, month % 12 + 1, rng.randrange(1, 29)
                )
        else:
            expected = as_of - timedelta(days=rng.randrange(1, 365))
        anchor = expected or as_of
        created = min(anchor, as_of) - timedelta(days=rng.randrange(20, 200))
        history: tuple[StageChange, ...] = ()
        if with_history:
            history = _history(rng, why, plan, stage, created, min(anchor, as_of))
        result.append(
            Opportunity(
                id=f"OPP-{i + 1:07d}",
                name=f"{account} - {rng.choice(_PRODUCTS)} #{i + 1}",
                account=account,
                owner=owner,
                team=team,
                industry=rng.choice(INDUSTRIES),
                region=rng.choice(REGIONS),
                amount=amount,
                stage=stage,
                expected_close=expected,
                created=created,
                history=history,
            )
        )
    return result


def _history(
    rng: random.Random, why: random.Random, plan: StagePlan, stage: str, start: date, end: date
) -> tuple[StageChange, ...]:
    """Moves from the first stage through the open stages to ``stage``, between two dates (a move
    into a lost stage with a reason drawn from ``why``)."""
    open_keys = [s.key for s in plan.open_stages]
    if stage in open_keys:
        path = open_keys[: open_keys.index(stage) + 1]
    elif plan.is_won(stage):
        path = [*open_keys, stage]
    else:
        path = [*open_keys[: rng.randrange(1, len(open_keys) + 1)], stage]
    span = max((end - start).days, len(path))
    days = sorted(rng.sample(range(span), len(path) - 1)) if len(path) > 1 else []
    moments = [start] + [start + timedelta(days=d + 1) for d in days]
    changes = []
    previous: str | None = None
    for key, moment in zip(path, moments, strict=True):
        reason = note = None
        if plan.is_lost(key):
            reason = why.choices(list(_LOST_REASON_MIX), list(_LOST_REASON_MIX.values()))[0]
            note = _LOST_NOTES[reason] if why.randrange(4) == 0 else None
        changes.append(StageChange(moment, previous, key, reason=reason, note=note))
        previous = key
    return tuple(changes)
