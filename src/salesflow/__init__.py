"""salesflow: the sales process of a CRM as a pure-domain library.

Everything public is importable from here: ``from salesflow import Money, StagePlan, forecast``.
Names load lazily on first use, so ``import salesflow`` stays fast and an application pays only for
the parts it touches.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from salesflow._version import __version__

# name -> module that defines it. Keep sorted by module, then name.
_EXPORTS: dict[str, str] = {
    "Forecast": "salesflow.analytics.forecast",
    "ForecastLine": "salesflow.analytics.forecast",
    "OVERDUE": "salesflow.analytics.forecast",
    "UNDATED": "salesflow.analytics.forecast",
    "forecast": "salesflow.analytics.forecast",
    "Actor": "salesflow.domain.actors",
    "Role": "salesflow.domain.actors",
    "Money": "salesflow.domain.money",
    "RateSource": "salesflow.domain.money",
    "Opportunity": "salesflow.domain.opportunities",
    "StageChange": "salesflow.domain.opportunities",
    "Period": "salesflow.domain.periods",
    "Outcome": "salesflow.domain.stages",
    "Stage": "salesflow.domain.stages",
    "StagePlan": "salesflow.domain.stages",
    "CommandResult": "salesflow.desk",
    "HandlerError": "salesflow.desk",
    "SalesDesk": "salesflow.desk",
    "open": "salesflow.desk",
    "open_storage": "salesflow.desk",
    "Event": "salesflow.domain.events",
    "get_plugin_manager": "salesflow.plugins.manager",
    "CallSourceType": "salesflow.plugins.hookspecs",
    "StorageBackend": "salesflow.plugins.hookspecs",
    "hookimpl": "salesflow.plugins.hookspecs",
    "generate_pipeline": "salesflow.samples",
    "read_opportunities": "salesflow.tabular",
    "iter_opportunities": "salesflow.tabular",
    "write_opportunities": "salesflow.tabular",
}

__all__ = [
    "OVERDUE",
    "UNDATED",
    "Actor",
    "CallSourceType",
    "CommandResult",
    "Event",
    "Forecast",
    "ForecastLine",
    "HandlerError",
    "Money",
    "Opportunity",
    "Outcome",
    "Period",
    "RateSource",
    "Role",
    "SalesDesk",
    "Stage",
    "StageChange",
    "StagePlan",
    "StorageBackend",
    "__version__",
    "errors",
    "forecast",
    "generate_pipeline",
    "get_plugin_manager",
    "hookimpl",
    "iter_opportunities",
    "open",
    "open_storage",
    "read_opportunities",
    "write_opportunities",
]


def __getattr__(name: str) -> Any:
    if name == "errors":
        return importlib.import_module("salesflow.errors")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'salesflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from salesflow import errors
    from salesflow.analytics.forecast import OVERDUE, UNDATED, Forecast, ForecastLine, forecast
    from salesflow.desk import CommandResult, HandlerError, SalesDesk, open, open_storage
    from salesflow.domain.actors import Actor, Role
    from salesflow.domain.events import Event
    from salesflow.domain.money import Money, RateSource
    from salesflow.domain.opportunities import Opportunity, StageChange
    from salesflow.domain.periods import Period
    from salesflow.domain.stages import Outcome, Stage, StagePlan
    from salesflow.plugins.hookspecs import CallSourceType, StorageBackend, hookimpl
    from salesflow.plugins.manager import get_plugin_manager
    from salesflow.samples import generate_pipeline
    from salesflow.tabular import iter_opportunities, read_opportunities, write_opportunities
