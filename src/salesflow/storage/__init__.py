"""Everything a storage backend is made of, for plugin authors (and for salesflow's own backends).

* :mod:`salesflow.storage.kinds`: the kinds of aggregate storage keeps (:data:`KINDS`, and
  :data:`OPPORTUNITIES`), with their keys, indexed fields, unique keys and rules.
* :mod:`salesflow.storage.codec`: aggregates to JSON documents and back, exactly.
* :mod:`salesflow.storage.invariants`: the rules every backend enforces on every write.
* :mod:`salesflow.storage.queries`: how query filters are checked and matched.
* :mod:`salesflow.storage.base`: :class:`BaseStorage`, which derives the whole port
  (:class:`salesflow.ports.Storage`) from seven primitives.

The port itself (what a backend must provide) is :mod:`salesflow.ports`; the conformance kit that
checks a backend is :mod:`salesflow.testing.storage`.
"""

from __future__ import annotations

from salesflow.storage import codec
from salesflow.storage.base import (
    FORECAST_PUSHDOWN,
    BaseDocuments,
    BaseEventLog,
    BaseOpportunities,
    BaseStorage,
    BaseUnitOfWork,
    Record,
)
from salesflow.storage.kinds import KINDS, OPPORTUNITIES, DocumentKind, Index, kind_of

__all__ = [
    "FORECAST_PUSHDOWN",
    "KINDS",
    "OPPORTUNITIES",
    "BaseDocuments",
    "BaseEventLog",
    "BaseOpportunities",
    "BaseStorage",
    "BaseUnitOfWork",
    "DocumentKind",
    "Index",
    "Record",
    "codec",
    "kind_of",
]
