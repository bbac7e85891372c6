"""The builtin authorization policy: answers last, so an embedding CRM can replace it.

* ``admin`` may do everything;
* ``sales_manager`` may act on records whose ``team`` is one of the manager's teams, and on their own;
* ``sales_rep`` (and anyone else) may act on records they own (``owner == actor.id``);
* approval decisions (``*.approve``, ``*.reject``) are left to the workflow, which checks the step's
  roles, so this policy allows them here and the approval engine decides;
* team-wide work without a single owner (importing a day of calls, curating the best-call library)
  is for a ``sales_manager``;
* ``finance`` issues invoices and credit notes and records payments on any contract.
"""

from __future__ import annotations

from typing import Any

from salesflow.domain.actors import Actor, Role
from salesflow.plugins.hookspecs import hookimpl

__all__ = ["APPROVAL_ACTIONS", "FINANCE_ACTIONS", "MANAGER_ACTIONS", "salesflow_authorize"]

APPROVAL_ACTIONS = frozenset({"approve", "reject"})
"""Verbs whose authorization is the workflow's: the actor must hold the step's role."""

MANAGER_ACTIONS = frozenset({"call.import", "library.feature", "library.unfeature"})
"""Team-wide actions a ``sales_manager`` may take on any team's records."""

FINANCE_ACTIONS = frozenset({"billing.invoice", "billing.credit", "billing.payment"})
"""Invoicing and recording payments: ``finance`` may do them on any contract."""


@hookimpl(trylast=True)
def salesflow_authorize(actor: Actor, action: str, subject: Any) -> bool:
    """The builtin answer (see the module docs)."""
    if actor.has_role(Role.ADMIN):
        return True
    if action.rsplit(".", 1)[-1] in APPROVAL_ACTIONS:
        return True
    if action in MANAGER_ACTIONS:
        return actor.has_role(Role.SALES_MANAGER)
    if action in FINANCE_ACTIONS and actor.has_role(Role.FINANCE):
        return True
    owner = getattr(subject, "owner", None)
    if owner is not None and owner == actor.id and actor.roles:
        return True
    if actor.has_role(Role.SALES_MANAGER):
        return actor.in_team(getattr(subject, "team", None))
    return False
