"""The HTML report (issue 13): self-contained, escaped, deterministic, every section present.

The browser's view of it is in ``test_report_browser.py``.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

import salesflow
from salesflow import Actor, Money, Opportunity, Period
from salesflow.errors import MissingDependencyError
from salesflow.report import render_report, write_report
from salesflow.sample import build_company

pytest.importorskip("matplotlib", reason="the report's charts need the plot extra")

SECTIONS = (
    "forecast",
    "funnel",
    "industries",
    "attainment-2026-11",
    "attainment-2026-Q4",
    "receivables",
    "lost",
    "calls",
    "approvals",
)
EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def company() -> Any:
    with build_company("memory://", seed=7, load_entrypoints=False) as built:
        yield built


def options(company: Any) -> dict[str, Any]:
    month, quarter = Period.month(2026, 11), Period.quarter(2026, 4)
    return {
        "as_of": company.as_of,
        "targets": company.targets(month) + company.targets(quarter),
        "teams": company.teams,
        "funnel_target": company.funnel_target,
    }


@pytest.fixture(scope="module")
def page(company: Any) -> str:
    return render_report(company.desk, **options(company))


def test_every_section_is_there(page: str) -> None:
    for key in SECTIONS:
        assert f'<section id="{key}">' in page
    assert page.count("<svg") == 7  # forecast, funnel, industries, quarter, ageing, lost, calls
    assert "As of 2026-11-26" in page
    # The funnel's deviations are highlighted, the forecast has its four buckets.
    assert 'class="num dev-above"' in page and 'class="num dev-below"' in page
    for column in ("Overdue", "This month (2026-11)", "Next month (2026-12)", "Undated"):
        assert f">{column}</th>" in page


def test_the_page_is_self_contained(page: str) -> None:
    """Nothing is fetched: no script, stylesheet, image, font or frame from anywhere."""
    assert "<script" not in page.lower()
    for pattern in (r"<link(?![^>]*data:,)", r"\ssrc=", r"@import", r"url\((?!#)", r"<iframe"):
        assert not re.search(pattern, page, re.IGNORECASE), pattern
    # Only SVG namespaces name a web address, and a namespace is never fetched.
    addresses = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert addresses <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


def test_ids_are_unique_so_charts_never_share_a_clip_path(page: str) -> None:
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    for reference in re.findall(r"url\(#([^)]+)\)", page):
        assert reference in ids


def test_the_same_data_gives_the_same_bytes(company: Any, page: str) -> None:
    assert render_report(company.desk, **options(company)) == page


def test_amounts_are_exact_and_grouped(company: Any, page: str) -> None:
    fc = company.desk.forecast(as_of=company.as_of)
    assert f"{fc.this_month.amount:,.2f}" in page
    assert f"{fc.total.amount:,.2f}" in page


def test_strings_from_the_data_are_escaped() -> None:
    """A rep or account named like a script shows as text, in tables and charts alike."""
    root = Actor("root", roles={"admin"})
    with salesflow.open("memory://", load_entrypoints=False) as desk:
        for i, stage in enumerate(("quotation", "needs_analysis", "won", "initial_contact")):
            desk.add_opportunity(
                root,
                Opportunity(
                    id=f"O-{i}",
                    owner=EVIL,
                    team=f'team "{EVIL}"',
                    account=EVIL,
                    industry=f"<b>{EVIL}</b>",
                    amount=Money.of("1000.00", "CNY"),
                    stage=stage,
                    expected_close=date(2026, 11, 20),
                ),
            )
        desk.move_opportunity(root, "O-3", "lost", reason="other", note=EVIL)
        target = {"initial_contact": 40, "needs_analysis": 30, "quotation": 20, "won": 10}
        page = render_report(
            desk, as_of=date(2026, 11, 26), funnel_target=target, title=f"Report {EVIL}"
        )
    assert EVIL not in page
    assert "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("&lt;script&gt;") >= 5  # title, forecast, funnel, industries, charts


def test_an_empty_desk_gives_a_page_without_charts() -> None:
    with salesflow.open("memory://", load_entrypoints=False) as desk:
        page = render_report(desk, as_of=date(2026, 11, 26))
    assert "<svg" not in page
    assert page.count("Nothing to show.") >= 5
    assert "No target funnel was given" in page


def test_write_report_writes_utf8(company: Any, tmp_path: Path) -> None:
    path = write_report(company.desk, tmp_path / "r.html", **options(company))
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_without_matplotlib_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, company: Any
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError, match="plot"):
        render_report(company.desk, **options(company))


def test_the_report_reads_the_desk_clock_by_default() -> None:
    from salesflow.sample import SampleClock

    clock = SampleClock(datetime(2026, 3, 4, 9, 0, tzinfo=UTC))
    with salesflow.open("memory://", clock=clock, load_entrypoints=False) as desk:
        assert "As of 2026-03-04" in render_report(desk)


def test_importing_salesflow_imports_neither_click_nor_matplotlib() -> None:
    import subprocess

    code = (
        "import sys, salesflow, salesflow.report, salesflow.sample; "
        "print('click' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
