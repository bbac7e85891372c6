"""examples/manager_review.py runs on a fresh clone and prints what a manager needs to act on."""

from __future__ import annotations

import runpy
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

import salesflow
from salesflow.analytics.funnel import funnel

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "manager_review.py"


@pytest.fixture(scope="module")
def output() -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        runpy.run_path(str(EXAMPLE), run_name="__main__")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def example() -> dict[str, object]:
    return runpy.run_path(str(EXAMPLE))  # the module's constants, without running main()


def _lines(output: str, caption_start: str) -> list[str]:
    """The table lines under the caption that starts with ``caption_start``."""
    block = output.split(caption_start, 1)[1].split("\n\n", 1)[0]
    return block.splitlines()[3:]  # caption rest, header, rule


def test_it_answers_the_four_questions(output):
    for heading in ("(R4)", "(R5)", "(R15)", "(R17)"):
        assert heading in output
    assert "Stage funnel per owner (546 opportunities, 54 lost opportunities left out)" in output
    assert "Opportunities by industry per team (600 opportunities)" in output
    assert "Attainment 2026-Q4 (CNY)" in output
    assert "Best reps for a new healthcare customer" in output
    assert "configured vs learned" in output


def test_the_printed_deviations_are_the_funnels_against_the_seed_target(output, example):
    pipeline = salesflow.generate_pipeline(600, seed=2026, as_of=example["AS_OF"])
    expected = funnel(pipeline).deviations(example["SEED_TARGET"])
    printed = [
        line.split()
        for line in _lines(output, "Funnel deviations (outside target x (1 +- 0.5), groups")
    ]
    assert len(printed) == len(expected) > 0
    for words, deviation in zip(printed, expected, strict=True):
        assert " ".join(words[:2]) == deviation.group
        assert words[2:4] == [deviation.stage, deviation.direction]
    significant = _lines(output, "Funnel deviations (outside target x (1 +- 0.5) and significant")
    assert 0 < len(significant) < len(printed)  # the test keeps the noise out


def test_the_signed_total_is_every_deal_won_in_the_quarter(output, example):
    pipeline = salesflow.generate_pipeline(600, seed=2026, as_of=example["AS_OF"])
    quarter = example["QUARTER"]
    total = Decimal(0)
    for opportunity in pipeline:
        if opportunity.stage != "won":
            continue
        moved = [c for c in opportunity.history if c.to_stage == "won"][-1]
        if quarter.contains(moved.at.date()):
            total += opportunity.amount.amount
    (all_row,) = [line for line in _lines(output, "Attainment 2026-Q4") if line.startswith("(all)")]
    words = all_row.split()
    assert words[1] == "total"
    # columns: name kind currency target signed ..., digits grouped by thousands
    assert Decimal(words[4].replace(",", "")) == total
    assert Decimal(words[3].replace(",", "")) == 8 * Decimal(2_500_000)


def test_the_recommended_reps_have_the_best_smoothed_healthcare_win_rates(output, example):
    pipeline = salesflow.generate_pipeline(600, seed=2026, as_of=example["AS_OF"])
    won: Counter[str] = Counter()
    closed: Counter[str] = Counter()
    for o in pipeline:
        if o.industry == "healthcare" and o.stage in ("won", "lost"):
            closed[o.owner] += 1
            won[o.owner] += o.stage == "won"
    team_rate = Fraction(sum(won.values()), sum(closed.values()))
    owners = {o.owner for o in pipeline}
    smoothed = {owner: (won[owner] + 10 * team_rate) / (closed[owner] + 10) for owner in owners}
    best = sorted(owners, key=lambda o: (-smoothed[o], -won[o], -closed[o], o))[:3]
    printed = [line.split() for line in _lines(output, "Best reps for a new healthcare customer")]
    assert [" ".join(words[1:3]) for words in printed] == best
