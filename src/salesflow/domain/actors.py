"""Who acts: an :class:`Actor` with roles and teams.

salesflow never owns the user model: an embedding CRM builds an ``Actor`` from its own user (id,
roles, teams) for each command. The builtin roles are in :class:`Role`; workflows and policies may
name any other role string.
"""

from __future__ import annotations

import enum

import attrs

from salesflow.domain.checks import as_ids, check_id

__all__ = ["Actor", "Role"]


class Role(enum.StrEnum):
    """The roles the requirements name (any other string is a valid role too)."""

    SALES_REP = "sales_rep"
    SALES_MANAGER = "sales_manager"
    PROJECT_MANAGER = "project_manager"
    FINANCE = "finance"
    LEGAL = "legal"
    SALES_DIRECTOR = "sales_director"
    ADMIN = "admin"


@attrs.frozen
class Actor:
    """A person (or system) acting: ``Actor("u-7", roles={"sales_rep"}, teams={"east"})``.

    An actor with no roles is valid but may do nothing that needs a role.
    """

    id: str = attrs.field(validator=check_id)
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=as_ids)
    teams: frozenset[str] = attrs.field(default=frozenset(), converter=as_ids)

    def has_role(self, role: str) -> bool:
        """Whether the actor holds ``role``."""
        return role in self.roles

    def in_team(self, team: str | None) -> bool:
        """Whether the actor belongs to ``team``."""
        return team is not None and team in self.teams
