"""SalesDesk commands for the sales rules: stored, versioned, permission-checked, audited.

The stage plan (with its lost reasons), the discount policy (which is also the quote approval
routing), the contract workflow, the team-bound roles and the team members are one
:class:`~salesflow.domain.rules.Rules` document in the storage, one stored version per change
(``uow.rules``; a version is never changed or deleted, the port refuses it). Version 0 is the
built-in defaults and is never stored.

* :meth:`RuleCommands.change_rules` stores the next version. It is allowed to whom the
  ``salesflow_authorize`` hook allows ``rules.change`` (``admin`` and ``sales_director`` by
  default), must name the version it changes (a stale one raises
  :class:`~salesflow.errors.ConcurrencyError`), and records a ``rules_changed`` event with who, when
  and the readable :func:`~salesflow.domain.rules.diff_rules`.
* A desk puts the latest stored rules in force when it opens, after its own changes, and again
  before each decision that depends on them (submitting a quote or a contract), so a desk opened
  before another desk's change never decides under the old rules. Reports use the rules loaded at
  open (:meth:`RuleCommands.reload_rules` loads them again).

**Precedence.** A part given in code (``salesflow.open(plan=..., discount_policy=...,
contract_workflow=...)``, or a :class:`~salesflow.adapters.authorization.TeamScope` registered as a
plugin, for the team-bound roles and the team members) wins: the desk uses it and does not consult
the stored part (:attr:`DeskCore.code_rules <salesflow.commands.core.DeskCore.code_rules>` lists
them), so an embedder who keeps the rules in their own system goes on as before. The stored
document can still be changed through the desk; it takes effect on desks that were not given that
part in code.

**Decisions keep their rules.** A submitted quote records the version whose discount policy judged
it (:attr:`Quote.rules_version <salesflow.domain.quotes.Quote.rules_version>`), a submitted contract
the version whose workflow reviews it (:attr:`Contract.rules_version
<salesflow.domain.contracts.Contract.rules_version>`); ``None`` when that part was given in code.
Decisions already made stand: a quote approved under version 3 stays approved when version 4
tightens the limits. A pending review keeps the route it got (its approval request carries its own
workflow); only a quote or contract submitted again is judged by the rules in force then.
"""

from __future__ import annotations

from typing import Any

from salesflow.adapters.authorization import RULES_SCOPE, TeamScope
from salesflow.commands.core import CommandResult, DeskCore
from salesflow.domain.actors import Actor
from salesflow.domain.approvals import Workflow
from salesflow.domain.discounts import DiscountPolicy
from salesflow.domain.events import Event
from salesflow.domain.rules import DEFAULT_TEAM_ROLES, Rules, diff_rules
from salesflow.domain.stages import StagePlan
from salesflow.errors import ConcurrencyError, InvalidTypeError, ValidationError
from salesflow.ports import UnitOfWork

__all__ = ["RuleCommands"]

_BUILTIN_POLICY = "salesflow.adapters.authorization"
"""The plugin name of the builtin authorization policy (:data:`salesflow.plugins.manager.BUILTIN_PLUGINS`)."""

_LOGGED_BYTES = 32_000
"""About how much of the diff a ``rules_changed`` event carries (the stored versions hold all of
it), well inside an event's limit."""
_LINE = 400
"""The longest diff line an event carries (characters)."""


def _logged(changes: tuple[str, ...]) -> list[str]:
    """The diff lines an event carries: each cut to :data:`_LINE` characters, as many as fit."""
    logged: list[str] = []
    size = 0
    for i, line in enumerate(changes):
        shown = line if len(line) <= _LINE else line[: _LINE - 1] + "\u2026"
        size += len(shown.encode("utf-8")) + 4
        if size > _LOGGED_BYTES:
            logged.append(f"... and {len(changes) - i} more (compare the versions for all)")
            break
        logged.append(shown)
    return logged


def _latest(uow: UnitOfWork) -> Rules:
    """The latest stored version, or the built-in defaults (version 0) when none is stored."""
    latest = Rules.default()
    for rules in uow.rules.query(order_by="version"):
        latest = rules
    return latest


class RuleCommands(DeskCore):
    """The sales rules on the desk: read them, see their history, change them."""

    _stored_rules: Rules

    # -- in force ------------------------------------------------------------------------------------

    def load_rules(self) -> None:
        """Put the latest stored rules in force for every part not given in code (called when the
        desk opens)."""
        if any(
            isinstance(plugin, TeamScope) and self.plugins.get_name(plugin) != RULES_SCOPE
            for plugin in self.plugins.get_plugins()
        ):
            self.code_rules = self.code_rules | {"team_roles", "team_members"}
            # Both answer last (trylast), and pluggy asks the one registered first first: the
            # builtin would always answer before the embedder's own TeamScope.
            self._drop_builtin_policy()
        with self.storage.transaction() as uow:
            self._put_in_force(_latest(uow))

    def reload_rules(self) -> Rules:
        """Read the latest stored rules again and put them in force (for the parts not given in
        code); returns them."""
        self.load_rules()
        return self._stored_rules

    def _put_in_force(self, rules: Rules) -> None:
        self._stored_rules = rules
        if "plan" not in self.code_rules:
            self.plan = rules.plan
        if "discount_policy" not in self.code_rules:
            self.discount_policy = rules.discount_policy
        if "contract_workflow" not in self.code_rules:
            self.contract_workflow = rules.contract_workflow
        if "team_roles" not in self.code_rules:
            scope = self.plugins.get_plugin(RULES_SCOPE)
            if isinstance(scope, TeamScope):
                scope.team_roles = rules.team_roles
                scope.team_members = rules.team_members
            elif rules.team_roles != DEFAULT_TEAM_ROLES or rules.team_members:
                # In place of the builtin policy (same answers but for the roles and members), so
                # that every other policy still answers before it.
                self._drop_builtin_policy()
                scope = TeamScope(rules.team_roles, team_members=rules.team_members)
                self.plugins.register(scope, name=RULES_SCOPE)

    def _drop_builtin_policy(self) -> None:
        """Unregister the builtin policy: a :class:`TeamScope` of the desk answers in its place."""
        builtin = self.plugins.get_plugin(_BUILTIN_POLICY)
        if builtin is not None:
            self.plugins.unregister(builtin)

    def rules_version_for(self, uow: UnitOfWork, part: str) -> int | None:
        """The stored version whose ``part`` a decision in ``uow`` is made under (read again if
        another desk stored a newer one), or ``None`` when ``part`` was given in code."""
        if part in self.code_rules:
            return None
        # Versions are stored 1, 2, 3... and never deleted, so their count is the latest one.
        if uow.rules.count() != self._stored_rules.version:
            self._put_in_force(_latest(uow))
        return self._stored_rules.version

    # -- reads -----------------------------------------------------------------------------------------

    def rules(self, *, actor: Actor | None = None) -> Rules:
        """The latest stored rules (the built-in defaults, version 0, when none are stored); for
        ``actor``, if they may read them (``rules.read``: anyone with a role by default).

        This is the stored document: a part given to this desk in code is in force instead
        (:attr:`code_rules`; ``desk.plan``, ``desk.discount_policy`` and ``desk.contract_workflow``
        are what the desk uses)."""
        with self.storage.transaction() as uow:
            latest = _latest(uow)
        return self.readable(actor, "rules", latest)

    def rules_history(self, *, actor: Actor | None = None) -> list[Rules]:
        """Every stored version of the rules, oldest first (empty when they never changed); for
        ``actor``, if they may read them. Compare two with :func:`~salesflow.domain.rules.diff_rules`."""
        with self.storage.transaction() as uow:
            history = list(uow.rules.query(order_by="version"))
        self.readable(actor, "rules", history[-1] if history else Rules.default())
        return history

    # -- the change ------------------------------------------------------------------------------------

    def change_rules(
        self,
        actor: Actor,
        change: Rules | StagePlan | DiscountPolicy | Workflow,
        *,
        version: int,
        comment: str | None = None,
    ) -> CommandResult[Rules]:
        """Store the next version of the rules: ``change`` is whole :class:`Rules` (their parts
        are taken, not their version or stamp) or one part (a plan, a discount policy or the
        contract workflow) that replaces its part of the current rules.

        ``version`` is the version the actor read (:meth:`rules`); a stale one raises
        :class:`~salesflow.errors.ConcurrencyError`. The actor must be allowed ``rules.change``
        (:class:`~salesflow.errors.NotAuthorizedError` otherwise); nothing changes on a refusal.
        The change is stamped with the actor and the clock's time, and recorded as a
        ``rules_changed`` event carrying the version, the previous one, the comment and the diff.
        Rules equal to the current ones store nothing and return the current version.
        """
        if not isinstance(change, Rules | StagePlan | DiscountPolicy | Workflow):
            raise InvalidTypeError(
                "change", change, "Rules, a StagePlan, a DiscountPolicy or a Workflow"
            )
        if type(version) is not int:
            raise InvalidTypeError("version", version, "the version of the rules you read (int)")
        if comment is not None and (not isinstance(comment, str) or len(comment) > 500):
            raise ValidationError("comment", comment, "None or a line of at most 500 characters")

        def work(uow: UnitOfWork, events: list[Event]) -> Rules:
            current = _latest(uow)
            self.authorize(actor, "rules.change", current)
            if version != current.version:
                raise ConcurrencyError(
                    "rules",
                    "rules",
                    version,
                    current.version,
                    message=f"the rules were read at version {version} but are at version "
                    f"{current.version}: read them again (desk.rules()) and make the change on "
                    "those",
                )
            wanted = change if isinstance(change, Rules) else current.with_part(change)
            if current.same_parts(wanted):
                return current
            new = current.changed(wanted, by=actor.id, at=self.now(), comment=comment)
            stored: Rules = uow.rules.add(new)
            data: dict[str, Any] = {
                "version": new.version,
                "previous": current.version,
                "changes": _logged(diff_rules(current, new)),
                "comment": comment,
            }
            events.append(self.event("rules_changed", "rules", "rules", actor, **data))
            uow.on_commit(lambda: self._put_in_force(stored))
            return stored

        return self.run(work)
