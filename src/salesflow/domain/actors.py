"""Who acts: an :class:`Actor` with roles and teams.

salesflow never owns the user model: an embedding CRM builds an ``Actor`` from its own user (id,
roles, teams) for each command. The builtin roles are in :class:`Role`; workflows and policies may
name any other role string.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from salesflow.errors import InvalidTypeError, ValidationError

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


def _names(value: Iterable[str] | str, field: str) -> frozenset[str]:
    if isinstance(value, str):
        value = (value,)
    try:
        names = frozenset(str(v) if isinstance(v, Role) else v for v in value)
    except TypeError:
        raise InvalidTypeError(field, value, "an iterable of strings") from None
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(field, name, "non-empty strings")
    return names


def _to_roles(value: Iterable[str] | str) -> frozenset[str]:
    return _names(value, "roles")


def _to_teams(value: Iterable[str] | str) -> frozenset[str]:
    return _names(value, "teams")


def _check_id(_instance: object, _attribute: object, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("id", value, "a non-empty string")


@attrs.frozen
class Actor:
    """A person (or system) acting: ``Actor("u-7", roles={"sales_rep"}, teams={"east"})``.

    An actor with no roles is valid but may do nothing that needs a role.
    """

    id: str = attrs.field(validator=_check_id)
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=_to_roles)
    teams: frozenset[str] = attrs.field(default=frozenset(), converter=_to_teams)

    def has_role(self, role: str) -> bool:
        """Whether the actor holds ``role``."""
        return role in self.roles

    def in_team(self, team: str | None) -> bool:
        """Whether the actor belongs to ``team``."""
        return team is not None and team in self.teams
