"""The builtin authorization policy: team scope. It answers last, so an embedding CRM can replace it.

Roles are *team-bound* (by default ``sales_rep`` and ``sales_manager``) or *organisation-wide*
(every other role: ``sales_director``, ``project_manager``, ``finance``, ``legal``, ``admin``). A
record's team is its ``team`` attribute (a quote's and a contract's are their opportunity's). A
record with no team of its own (a contact, a follow-up task, a call) is in the teams its owner is a
member of (``team_members``, :attr:`Rules.team_members <salesflow.domain.rules.Rules.team_members>`
on a desk); without members named it is in no team.

* ``admin`` may do everything.
* **Reading** (``<kind>.read``): an organisation-wide role reads everything; a ``sales_manager``
  reads the records of their teams; anyone reads the records they own.
* **Deciding** (``<kind>.approve``, ``<kind>.reject``) in a team-bound role: only on records of the
  actor's teams (a record without a team: those of its owner's teams, else anyone holding the
  role). In an organisation-wide role the
  workflow decides (the actor must hold the step's role). The approval engine also refuses the
  subject's owner and submitter.
* **Delegating** (``delegation.<verb>``): the delegator's own grants.
* **Changing**: a ``sales_director`` changes any record; a ``sales_manager`` those of their teams;
  anyone with a role those they own, if the record's team (when it has one) is one of theirs.
* Team-wide work without a single owner (importing a day of calls, curating the best-call library)
  is for a ``sales_manager`` or ``sales_director``; importing opportunities, which brings their
  past history, for a ``sales_director`` or the ``sales_manager`` of their teams; ``finance``
  invoices, credits and records payments on any contract, and a ``project_manager`` records
  execution progress on any contract.
* The sales rules (``rules.change``: the stage plan, discount policy, contract workflow,
  team-bound roles and team members, see :mod:`salesflow.commands.rules`) are changed by the
  ``rules_roles`` (``admin`` and ``sales_director`` by default) and read (``rules.read``) by
  anyone with a role.

The desk checks a change on the record as it is **and** as it would be, so nobody moves a record
out of (or into) a scope they do not have. Configure the team-bound roles with
``salesflow.open(plugins=[TeamScope(team_roles={...})])``: a desk given its own ``TeamScope``
unregisters this module's builtin answer, which would otherwise answer first (both are
``trylast``, and pluggy asks the one registered first first). Without one, a desk takes the team-bound roles from its stored rules
(:attr:`Rules.team_roles <salesflow.domain.rules.Rules.team_roles>`) and the team members
(:attr:`Rules.team_members <salesflow.domain.rules.Rules.team_members>`): when they differ from the
defaults, it registers a ``TeamScope`` with them under the name :data:`RULES_SCOPE` in place of this
module's builtin answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from salesflow.domain.actors import Actor, Role
from salesflow.domain.rules import DEFAULT_TEAM_ROLES, as_team_members
from salesflow.plugins.hookspecs import hookimpl

__all__ = [
    "APPROVAL_ACTIONS",
    "DEFAULT_TEAM_ROLES",
    "FINANCE_ACTIONS",
    "MANAGER_ACTIONS",
    "PROJECT_ACTIONS",
    "RULES_ROLES",
    "RULES_SCOPE",
    "TeamScope",
    "salesflow_authorize",
]

APPROVAL_ACTIONS = frozenset({"approve", "reject"})
"""Verbs that decide an approval step; the hook is told the ``role`` decided in."""

MANAGER_ACTIONS = frozenset({"call.import", "library.feature", "library.unfeature"})
"""Team-wide actions for a ``sales_manager`` or ``sales_director``."""

FINANCE_ACTIONS = frozenset({"billing.invoice", "billing.credit", "billing.payment"})
"""Invoicing and recording payments: ``finance`` may do them on any contract."""

PROJECT_ACTIONS = frozenset({"billing.progress", "billing.correct"})
"""Execution progress: a ``project_manager`` may record it on any contract."""

RULES_ROLES = frozenset({Role.ADMIN.value, Role.SALES_DIRECTOR.value})
"""The roles that may change the sales rules unless configured otherwise."""

RULES_SCOPE = "salesflow.rules.team_scope"
"""The plugin name of the :class:`TeamScope` a desk registers for its stored team-bound roles."""


class TeamScope:
    """The team-scope policy (see the module docs), with the team-bound roles and the roles that
    may change the sales rules as configuration."""

    def __init__(
        self,
        team_roles: Iterable[str] = DEFAULT_TEAM_ROLES,
        *,
        rules_roles: Iterable[str] = RULES_ROLES,
        team_members: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.team_roles = frozenset(team_roles)
        """Roles that act only on records of the actor's teams."""
        self.rules_roles = frozenset(rules_roles)
        """Roles that may change the sales rules (``rules.change``)."""
        self.team_members = team_members
        """Who is in which team: a record with no team is in its owner's teams."""

    @property
    def team_members(self) -> Mapping[str, frozenset[str]]:
        """Team -> its members' ids (see the module docs)."""
        return self._members

    @team_members.setter
    def team_members(self, value: Mapping[str, Iterable[str]] | None) -> None:
        members = {} if value is None else as_team_members(value)
        self._members = {team: frozenset(ids) for team, ids in members.items()}

    def in_scope(self, actor: Actor, subject: Any) -> bool:
        """Whether ``subject`` is a record of one of ``actor``'s teams: its ``team``, or for a
        record without one, a team its owner is a member of."""
        team = getattr(subject, "team", None)
        if team is not None:
            return actor.in_team(team)
        owner = getattr(subject, "owner", None)
        members = self._members
        return owner is not None and any(owner in members.get(t, ()) for t in actor.teams)

    def is_org_wide(self, actor: Actor) -> bool:
        """Whether ``actor`` holds a role that is not team-bound."""
        return any(role not in self.team_roles for role in actor.roles)

    @hookimpl(trylast=True)
    def salesflow_authorize(
        self, actor: Actor, action: str, subject: Any, role: str | None
    ) -> bool:
        """The team-scope answer (see the module docs)."""
        return self.allows(actor, action, subject, role)

    def allows(self, actor: Actor, action: str, subject: Any, role: str | None = None) -> bool:
        """Whether ``actor`` may do ``action`` on ``subject`` (deciding in ``role``)."""
        if actor.has_role(Role.ADMIN):
            return True
        if action == "rules.change":
            return any(actor.has_role(r) for r in self.rules_roles)
        if action == "rules.read":
            return bool(actor.roles)
        verb = action.rsplit(".", 1)[-1]
        team = getattr(subject, "team", None)
        owner = getattr(subject, "owner", None)
        in_team = team is None or actor.in_team(team)
        if verb in APPROVAL_ACTIONS:
            # The engine checks that the actor holds the role (or a delegation of it).
            if role is None:
                return False
            if role not in self.team_roles:
                return True
            if team is not None:
                return actor.in_team(team)
            # No team of its own: its owner's teams decide, if the members name any.
            listed = [t for t, members in self._members.items() if owner in members]
            return not listed or any(actor.in_team(t) for t in listed)
        if action.startswith("delegation."):
            return getattr(subject, "delegator", None) == actor.id
        if verb == "read":
            if self.is_org_wide(actor) or (owner is not None and owner == actor.id):
                return True
            return actor.has_role(Role.SALES_MANAGER) and self.in_scope(actor, subject)
        if action in MANAGER_ACTIONS:
            return actor.has_role(Role.SALES_MANAGER) or actor.has_role(Role.SALES_DIRECTOR)
        if action == "opportunity.import":
            # Past deals with the history they bring: a manager's, for their teams; a rep's
            # history is what the desk recorded.
            if actor.has_role(Role.SALES_DIRECTOR):
                return True
            return actor.has_role(Role.SALES_MANAGER) and self.in_scope(actor, subject)
        if action in FINANCE_ACTIONS and actor.has_role(Role.FINANCE):
            return True
        if action in PROJECT_ACTIONS and actor.has_role(Role.PROJECT_MANAGER):
            return True
        if actor.has_role(Role.SALES_DIRECTOR):
            return True
        if actor.has_role(Role.SALES_MANAGER) and self.in_scope(actor, subject):
            return True
        return bool(actor.roles) and owner is not None and owner == actor.id and in_team


_DEFAULT = TeamScope()


@hookimpl(trylast=True)
def salesflow_authorize(actor: Actor, action: str, subject: Any, role: str | None) -> bool:
    """The builtin answer: :class:`TeamScope` with the default team-bound roles."""
    return _DEFAULT.allows(actor, action, subject, role)
