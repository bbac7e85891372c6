"""Shared fixtures: where the real data sets live, and hypothesis profiles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from salesflow.domain.stages import StagePlan

ROOT = Path(__file__).resolve().parent.parent

# CI runs more examples; a developer's run stays quick. Neither has a deadline: timing is measured
# in benchmarks/, never asserted in tests.
settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def data_dir() -> Path:
    """The public data sets: $SALESFLOW_DATA_DIR, or ../shared/data beside the checkout."""
    configured = os.environ.get("SALESFLOW_DATA_DIR")
    return Path(configured) if configured else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of the real data sets; skips the test (with the reason) where it is absent."""
    folder = data_dir()
    if not folder.is_dir():
        pytest.skip(f"real data not found at {folder} (set SALESFLOW_DATA_DIR)")
    return folder


@pytest.fixture(scope="session")
def maven(shared_data: Path) -> Path:
    """The Maven Analytics CRM data set (sales_pipeline.csv, accounts.csv, ...)."""
    folder = shared_data / "maven-crm"
    if not (folder / "sales_pipeline.csv").is_file():
        pytest.skip(f"Maven CRM data not found in {folder}")
    return folder


@pytest.fixture(scope="session")
def maven_plan() -> StagePlan:
    """The Maven data's stages (Prospecting / Engaging / Won / Lost) as a plan: Engaging at 60 %
    counts at a 50 % threshold, Prospecting at 20 % does not."""
    return StagePlan.from_dict(
        {
            "threshold": 50,
            "stages": [
                {"key": "prospecting", "name": "Prospecting", "probability": 20},
                {"key": "engaging", "name": "Engaging", "probability": 60},
                {"key": "won", "name": "Won", "probability": 100, "outcome": "won"},
                {"key": "lost", "name": "Lost", "probability": 0, "outcome": "lost"},
            ],
        }
    )


@pytest.fixture(scope="session")
def northwind(shared_data: Path) -> Path:
    """The Northwind Traders data set (products.csv, order-details.csv, ...)."""
    folder = shared_data / "northwind"
    if not (folder / "products.csv").is_file():
        pytest.skip(f"Northwind data not found in {folder}")
    return folder


@pytest.fixture(scope="session")
def twilio_calls(shared_data: Path) -> Path:
    """Twilio Call resource JSON pages."""
    folder = shared_data / "twilio-calls"
    if not (folder / "call_read_full_page1.json").is_file():
        pytest.skip(f"Twilio call samples not found in {folder}")
    return folder
