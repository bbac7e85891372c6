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
    "AsteriskCsvSource": "salesflow.adapters.telephony_asterisk",
    "TwilioJsonSource": "salesflow.adapters.telephony_twilio",
    "call_stats": "salesflow.analytics.calls",
    "CallGroupStats": "salesflow.analytics.calls",
    "CallStats": "salesflow.analytics.calls",
    "Distribution": "salesflow.analytics.distribution",
    "distribution": "salesflow.analytics.distribution",
    "largest_remainder_shares": "salesflow.analytics.distribution",
    "Forecast": "salesflow.analytics.forecast",
    "forecast": "salesflow.analytics.forecast",
    "ForecastLine": "salesflow.analytics.forecast",
    "OVERDUE": "salesflow.analytics.forecast",
    "UNDATED": "salesflow.analytics.forecast",
    "binomial_p_value": "salesflow.analytics.funnel",
    "Funnel": "salesflow.analytics.funnel",
    "funnel": "salesflow.analytics.funnel",
    "FunnelDeviation": "salesflow.analytics.funnel",
    "FunnelDeviations": "salesflow.analytics.funnel",
    "Attainment": "salesflow.analytics.performance",
    "attainment": "salesflow.analytics.performance",
    "AttainmentRow": "salesflow.analytics.performance",
    "signed_deals": "salesflow.analytics.performance",
    "SignedDeal": "salesflow.analytics.performance",
    "SignedItem": "salesflow.analytics.performance",
    "Target": "salesflow.analytics.performance",
    "OwnerScore": "salesflow.analytics.strengths",
    "recommend_owners": "salesflow.analytics.strengths",
    "Recommendation": "salesflow.analytics.strengths",
    "rep_industry_matrix": "salesflow.analytics.strengths",
    "RepIndustryMatrix": "salesflow.analytics.strengths",
    "StrengthCell": "salesflow.analytics.strengths",
    "learned_probabilities": "salesflow.analytics.velocity",
    "LearnedProbabilities": "salesflow.analytics.velocity",
    "LearnedProbability": "salesflow.analytics.velocity",
    "stage_velocity": "salesflow.analytics.velocity",
    "StageVelocity": "salesflow.analytics.velocity",
    "StageVisits": "salesflow.analytics.velocity",
    "CallImport": "salesflow.desk",
    "CommandResult": "salesflow.desk",
    "HandlerError": "salesflow.desk",
    "open": "salesflow.desk",
    "open_storage": "salesflow.desk",
    "SalesDesk": "salesflow.desk",
    "Actor": "salesflow.domain.actors",
    "Role": "salesflow.domain.actors",
    "BestCallLibrary": "salesflow.domain.calls",
    "CallLinker": "salesflow.domain.calls",
    "CallRecord": "salesflow.domain.calls",
    "CallSource": "salesflow.domain.calls",
    "Contact": "salesflow.domain.calls",
    "Direction": "salesflow.domain.calls",
    "Disposition": "salesflow.domain.calls",
    "feature_call": "salesflow.domain.calls",
    "FollowUpTask": "salesflow.domain.calls",
    "LibraryAuditRecord": "salesflow.domain.calls",
    "LibraryEntry": "salesflow.domain.calls",
    "link_call": "salesflow.domain.calls",
    "LinkedCall": "salesflow.domain.calls",
    "MalformedRow": "salesflow.domain.calls",
    "OpenTasks": "salesflow.domain.calls",
    "search_library": "salesflow.domain.calls",
    "TaskStatus": "salesflow.domain.calls",
    "unfeature_entry": "salesflow.domain.calls",
    "unique_calls": "salesflow.domain.calls",
    "Bundle": "salesflow.domain.catalog",
    "BundleComponent": "salesflow.domain.catalog",
    "Catalog": "salesflow.domain.catalog",
    "Category": "salesflow.domain.catalog",
    "PriceTier": "salesflow.domain.catalog",
    "Product": "salesflow.domain.catalog",
    "CategoryLimit": "salesflow.domain.discounts",
    "DiscountPolicy": "salesflow.domain.discounts",
    "DiscountReason": "salesflow.domain.discounts",
    "DiscountVerdict": "salesflow.domain.discounts",
    "QuoteRouting": "salesflow.domain.discounts",
    "RoleLimits": "salesflow.domain.discounts",
    "route_quote": "salesflow.domain.discounts",
    "RouteDecision": "salesflow.domain.discounts",
    "Event": "salesflow.domain.events",
    "Money": "salesflow.domain.money",
    "RateSource": "salesflow.domain.money",
    "Opportunity": "salesflow.domain.opportunities",
    "StageChange": "salesflow.domain.opportunities",
    "Period": "salesflow.domain.periods",
    "normalise_number": "salesflow.domain.phones",
    "PhoneDirectory": "salesflow.domain.phones",
    "PhoneSettings": "salesflow.domain.phones",
    "Quote": "salesflow.domain.quotes",
    "QuoteExplanation": "salesflow.domain.quotes",
    "QuoteItem": "salesflow.domain.quotes",
    "QuoteLine": "salesflow.domain.quotes",
    "QuoteState": "salesflow.domain.quotes",
    "Outcome": "salesflow.domain.stages",
    "Stage": "salesflow.domain.stages",
    "StagePlan": "salesflow.domain.stages",
    "CallSourceType": "salesflow.plugins.hookspecs",
    "hookimpl": "salesflow.plugins.hookspecs",
    "StorageBackend": "salesflow.plugins.hookspecs",
    "get_plugin_manager": "salesflow.plugins.manager",
    "generate_pipeline": "salesflow.samples",
    "iter_opportunities": "salesflow.tabular",
    "read_opportunities": "salesflow.tabular",
    "write_opportunities": "salesflow.tabular",
}

__all__ = [
    "OVERDUE",
    "UNDATED",
    "Actor",
    "AsteriskCsvSource",
    "Attainment",
    "AttainmentRow",
    "BestCallLibrary",
    "Bundle",
    "BundleComponent",
    "CallGroupStats",
    "CallImport",
    "CallLinker",
    "CallRecord",
    "CallSource",
    "CallSourceType",
    "CallStats",
    "Catalog",
    "Category",
    "CategoryLimit",
    "CommandResult",
    "Contact",
    "Direction",
    "DiscountPolicy",
    "DiscountReason",
    "DiscountVerdict",
    "Disposition",
    "Distribution",
    "Event",
    "FollowUpTask",
    "Forecast",
    "ForecastLine",
    "Funnel",
    "FunnelDeviation",
    "FunnelDeviations",
    "HandlerError",
    "LearnedProbabilities",
    "LearnedProbability",
    "LibraryAuditRecord",
    "LibraryEntry",
    "LinkedCall",
    "MalformedRow",
    "Money",
    "OpenTasks",
    "Opportunity",
    "Outcome",
    "OwnerScore",
    "Period",
    "PhoneDirectory",
    "PhoneSettings",
    "PriceTier",
    "Product",
    "Quote",
    "QuoteExplanation",
    "QuoteItem",
    "QuoteLine",
    "QuoteRouting",
    "QuoteState",
    "RateSource",
    "Recommendation",
    "RepIndustryMatrix",
    "Role",
    "RoleLimits",
    "RouteDecision",
    "SalesDesk",
    "SignedDeal",
    "SignedItem",
    "Stage",
    "StageChange",
    "StagePlan",
    "StageVelocity",
    "StageVisits",
    "StorageBackend",
    "StrengthCell",
    "Target",
    "TaskStatus",
    "TwilioJsonSource",
    "__version__",
    "attainment",
    "binomial_p_value",
    "call_stats",
    "distribution",
    "errors",
    "feature_call",
    "forecast",
    "funnel",
    "generate_pipeline",
    "get_plugin_manager",
    "hookimpl",
    "iter_opportunities",
    "largest_remainder_shares",
    "learned_probabilities",
    "link_call",
    "normalise_number",
    "open",
    "open_storage",
    "read_opportunities",
    "recommend_owners",
    "rep_industry_matrix",
    "route_quote",
    "search_library",
    "signed_deals",
    "stage_velocity",
    "unfeature_entry",
    "unique_calls",
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
    from salesflow.adapters.telephony_asterisk import AsteriskCsvSource
    from salesflow.adapters.telephony_twilio import TwilioJsonSource
    from salesflow.analytics.calls import CallGroupStats, CallStats, call_stats
    from salesflow.analytics.distribution import (
        Distribution,
        distribution,
        largest_remainder_shares,
    )
    from salesflow.analytics.forecast import OVERDUE, UNDATED, Forecast, ForecastLine, forecast
    from salesflow.analytics.funnel import (
        Funnel,
        FunnelDeviation,
        FunnelDeviations,
        binomial_p_value,
        funnel,
    )
    from salesflow.analytics.performance import (
        Attainment,
        AttainmentRow,
        SignedDeal,
        SignedItem,
        Target,
        attainment,
        signed_deals,
    )
    from salesflow.analytics.strengths import (
        OwnerScore,
        Recommendation,
        RepIndustryMatrix,
        StrengthCell,
        recommend_owners,
        rep_industry_matrix,
    )
    from salesflow.analytics.velocity import (
        LearnedProbabilities,
        LearnedProbability,
        StageVelocity,
        StageVisits,
        learned_probabilities,
        stage_velocity,
    )
    from salesflow.desk import (
        CallImport,
        CommandResult,
        HandlerError,
        SalesDesk,
        open,
        open_storage,
    )
    from salesflow.domain.actors import Actor, Role
    from salesflow.domain.calls import (
        BestCallLibrary,
        CallLinker,
        CallRecord,
        CallSource,
        Contact,
        Direction,
        Disposition,
        FollowUpTask,
        LibraryAuditRecord,
        LibraryEntry,
        LinkedCall,
        MalformedRow,
        OpenTasks,
        TaskStatus,
        feature_call,
        link_call,
        search_library,
        unfeature_entry,
        unique_calls,
    )
    from salesflow.domain.catalog import (
        Bundle,
        BundleComponent,
        Catalog,
        Category,
        PriceTier,
        Product,
    )
    from salesflow.domain.discounts import (
        CategoryLimit,
        DiscountPolicy,
        DiscountReason,
        DiscountVerdict,
        QuoteRouting,
        RoleLimits,
        RouteDecision,
        route_quote,
    )
    from salesflow.domain.events import Event
    from salesflow.domain.money import Money, RateSource
    from salesflow.domain.opportunities import Opportunity, StageChange
    from salesflow.domain.periods import Period
    from salesflow.domain.phones import PhoneDirectory, PhoneSettings, normalise_number
    from salesflow.domain.quotes import Quote, QuoteExplanation, QuoteItem, QuoteLine, QuoteState
    from salesflow.domain.stages import Outcome, Stage, StagePlan
    from salesflow.plugins.hookspecs import CallSourceType, StorageBackend, hookimpl
    from salesflow.plugins.manager import get_plugin_manager
    from salesflow.samples import generate_pipeline
    from salesflow.tabular import iter_opportunities, read_opportunities, write_opportunities
