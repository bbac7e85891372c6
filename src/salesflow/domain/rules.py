"""The sales rules as one versioned document: stage plan, discount policy, workflow, teams.

A company's rules change over time, and a decision must stay explainable by the rules it was made
under. :class:`Rules` holds every configurable part in one value with a **version**:

* :attr:`Rules.plan`: the stage plan with its lost reasons (:class:`~salesflow.domain.stages.StagePlan`);
* :attr:`Rules.discount_policy`: who may give which discount, and so where a quote goes for approval
  (:class:`~salesflow.domain.discounts.DiscountPolicy`; a quote's approval route is the one-step
  workflow of the lowest ladder role that covers it, so the ladder *is* the quote routing);
* :attr:`Rules.contract_workflow`: who reviews a contract, in which order
  (:class:`~salesflow.domain.approvals.Workflow`);
* :attr:`Rules.team_roles`: the roles that act only within the actor's teams (the builtin
  authorization policy, :class:`~salesflow.adapters.authorization.TeamScope`);
* :attr:`Rules.team_members`: who is in which team, for the records that carry no team of their
  own (contacts, follow-up tasks, calls): a sales manager reads and works on those of their teams'
  members.

Version 0 is the built-in defaults, never stored (:meth:`Rules.default`); each change the desk
stores is the next version, stamped with who changed it and when (:meth:`Rules.changed`).
:func:`diff_rules` says what changed between two versions in readable lines, and every part reads from
and writes to TOML (:meth:`Rules.to_toml`, :meth:`Rules.from_toml`) through its own
``to_dict``/``from_dict``, so a field a part gains travels without a change here::

    rules = Rules.from_toml(open("rules.toml").read())
    print(Rules.default().to_toml())
    for line in diff_rules(Rules.default(), rules):
        print(line)

TOML has no null: a ``None`` in a part's dict is left out of the file, and the part's ``from_dict``
reads the missing key as its default. Decimals are written as strings (``"12.5"``), so they come
back exact; a float in a hand-written file is read as a ``Decimal`` too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from salesflow.domain import toml_text
from salesflow.domain.approvals import Workflow
from salesflow.domain.checks import (
    MAX_ID_LENGTH,
    as_ids,
    as_optional_datetime,
    check_count,
    check_optional_id,
    check_optional_text,
    check_string,
)
from salesflow.domain.discounts import DiscountPolicy
from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError, ValidationError

__all__ = [
    "DEFAULT_TEAM_ROLES",
    "RULE_PARTS",
    "Rules",
    "as_team_members",
    "default_discount_policy",
    "diff_rules",
]

DEFAULT_TEAM_ROLES: frozenset[str] = frozenset({"sales_rep", "sales_manager"})
"""The roles that act only within the actor's teams unless the rules say otherwise."""

RULE_PARTS: tuple[str, ...] = (
    "plan",
    "discount_policy",
    "contract_workflow",
    "team_roles",
    "team_members",
)
"""The parts of :class:`Rules`, in the order files and diffs list them."""


def default_discount_policy() -> DiscountPolicy:
    """The policy of a desk that was given none: a rep may give up to 10 % per line and on average,
    a sales manager 20 %, a sales director 25 %; more needs nobody's approval because nobody may
    give it."""
    return DiscountPolicy.from_dict(
        {
            "ladder": [
                {"role": "sales_rep", "max_line_discount": 10},
                {"role": "sales_manager", "max_line_discount": 20},
                {"role": "sales_director", "max_line_discount": 25},
            ]
        }
    )


def _trimmed_id(value: object, field: str, what: str) -> str:
    """``value`` if it is an id without surrounding spaces (``what``: "role names")."""
    if not isinstance(value, str):
        raise InvalidTypeError(field, value, f"{what} as strings")
    if not value.strip() or value != value.strip():
        raise ValidationError(field, value, f"{what} without surrounding spaces")
    check_string(value, field, MAX_ID_LENGTH)
    return value


def _check_team_roles(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    for role in sorted(value):  # type: ignore[call-overload]
        _trimmed_id(role, "team_roles", "role names")


def as_team_members(value: object) -> dict[str, tuple[str, ...]]:
    """``value`` (team -> member ids) checked, with each team's members sorted and listed once and
    the teams in name order; :class:`~salesflow.errors.InvalidTypeError` or
    :class:`~salesflow.errors.ValidationError` naming the team or member otherwise."""
    if not isinstance(value, Mapping):
        raise InvalidTypeError("team_members", value, "a mapping of team -> member ids")
    members: dict[str, tuple[str, ...]] = {}
    for team, people in value.items():
        field = f"team_members.{_trimmed_id(team, 'team_members', 'team names')}"
        if isinstance(people, str | bytes | Mapping) or not isinstance(people, Iterable):
            raise InvalidTypeError(field, people, "a list of member ids")
        members[team] = tuple(sorted({_trimmed_id(p, field, "member ids") for p in people}))
    return dict(sorted(members.items()))


def _check_stamp(instance: Rules, _attribute: attrs.Attribute[Any], _value: object) -> None:
    stamped = instance.changed_by is not None and instance.effective_at is not None
    if instance.version == 0 and (instance.changed_by or instance.effective_at):
        raise ValidationError(
            "version", 0, "1 or more for rules that someone changed (0 is the built-in defaults)"
        )
    if instance.version > 0 and not stamped:
        raise ValidationError(
            "changed_by",
            instance.changed_by,
            f"who changed the rules and when (effective_at) for version {instance.version}",
        )


def _of_type(kind: type, expected: str) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind):
            raise InvalidTypeError(attribute.name, value, expected)

    return check


@attrs.frozen(kw_only=True)
class Rules:
    """One version of the sales rules (see the module docs).

    ``Rules.default()`` is version 0, the built-in defaults; :meth:`changed` makes the next version
    with other parts, stamped with who changed it and when. Compare two with :func:`diff_rules`.
    """

    version: int = attrs.field(default=0, validator=check_count)
    """0 for the built-in defaults, then 1, 2, ... one per stored change."""
    plan: StagePlan = attrs.field(
        factory=StagePlan.default, validator=_of_type(StagePlan, "a StagePlan")
    )
    """The stages, their probabilities, the forecast threshold and the lost reasons."""
    discount_policy: DiscountPolicy = attrs.field(
        factory=default_discount_policy, validator=_of_type(DiscountPolicy, "a DiscountPolicy")
    )
    """Who may give which discount; a quote beyond its owner's limits waits for the lowest role
    whose limits cover it."""
    contract_workflow: Workflow = attrs.field(
        factory=Workflow.contract_default, validator=_of_type(Workflow, "a Workflow")
    )
    """Who reviews a contract, in which order."""
    team_roles: frozenset[str] = attrs.field(
        default=DEFAULT_TEAM_ROLES, converter=as_ids, validator=_check_team_roles
    )
    """The roles that act only on records of the actor's teams; every other role is
    organisation-wide."""
    team_members: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=dict, converter=as_team_members, hash=False
    )
    """Who is in which team (``{"east": ("ann", "bob")}``): a record with no team of its own
    (a contact, a follow-up task, a call) is in the teams of its owner. Empty by default, when
    only records that name their team are a team's."""
    changed_by: str | None = attrs.field(default=None, validator=check_optional_id)
    """Who made this version (``None`` for the defaults)."""
    effective_at: datetime | None = attrs.field(
        default=None, converter=as_optional_datetime, validator=_check_stamp
    )
    """When this version took effect (``None`` for the defaults)."""
    comment: str | None = attrs.field(default=None, validator=check_optional_text)
    """Why it changed, as its author said (a short line)."""

    @property
    def id(self) -> str:
        """How messages name this version (``"version 3"``)."""
        return f"version {self.version}"

    @classmethod
    def default(cls) -> Rules:
        """Version 0: the default stage plan, discount policy, contract workflow and team roles."""
        return cls()

    def parts(self) -> dict[str, Any]:
        """The parts by name (:data:`RULE_PARTS`), without the version stamp."""
        return {name: getattr(self, name) for name in RULE_PARTS}

    def with_part(self, part: StagePlan | DiscountPolicy | Workflow) -> Rules:
        """A copy with ``part`` in place of the part of its type (same version and stamp: the
        desk's :meth:`~salesflow.commands.rules.RuleCommands.change_rules` stamps the change)."""
        if isinstance(part, StagePlan):
            return attrs.evolve(self, plan=part)
        if isinstance(part, DiscountPolicy):
            return attrs.evolve(self, discount_policy=part)
        if isinstance(part, Workflow):
            return attrs.evolve(self, contract_workflow=part)
        raise InvalidTypeError(
            "part", part, "Rules, a StagePlan, a DiscountPolicy or a Workflow (the contract's)"
        )

    def changed(self, parts: Rules, *, by: str, at: datetime, comment: str | None = None) -> Rules:
        """The next version: the parts of ``parts``, changed ``by`` someone ``at`` a time."""
        if not isinstance(parts, Rules):
            raise InvalidTypeError("rules", parts, "Rules")
        return Rules(
            version=self.version + 1,
            **parts.parts(),
            changed_by=by,
            effective_at=at,
            comment=comment,
        )

    def same_parts(self, other: Rules) -> bool:
        """Whether ``other`` has the same parts (whatever its version and stamp)."""
        return self.parts() == other.parts()

    # -- plain dicts and TOML --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """These rules as a plain dict: the stamp, then each part as its own ``to_dict()``."""
        data: dict[str, Any] = {"version": self.version}
        if self.changed_by is not None:
            data["changed_by"] = self.changed_by
        if self.effective_at is not None:
            data["effective_at"] = self.effective_at
        if self.comment is not None:
            data["comment"] = self.comment
        data["team_roles"] = sorted(self.team_roles)
        data["team_members"] = {team: list(ids) for team, ids in self.team_members.items()}
        data["plan"] = self.plan.to_dict()
        data["discount_policy"] = self.discount_policy.to_dict()
        data["contract_workflow"] = self.contract_workflow.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base: Rules | None = None) -> Rules:
        """Rules from :meth:`to_dict`'s shape. A part the dict leaves out is ``base``'s (the
        defaults' when ``base`` is ``None``), so a file may hold one part only; so is the stamp
        (version, who, when, comment) when the dict has no ``"version"``."""
        if not isinstance(data, Mapping):
            raise InvalidTypeError("rules", data, "a mapping of the rules' parts")
        allowed = {"version", "changed_by", "effective_at", "comment", *RULE_PARTS}
        unknown = set(data) - allowed
        if unknown:
            raise ValidationError("rules", sorted(unknown), f"only the keys {sorted(allowed)}")
        start = base if base is not None else cls.default()
        parts = start.parts()
        readers: dict[str, Callable[[Any], Any]] = {
            "plan": StagePlan.from_dict,
            "discount_policy": DiscountPolicy.from_dict,
            "contract_workflow": Workflow.from_dict,
            "team_roles": _team_roles,
            "team_members": as_team_members,
        }
        for name, read in readers.items():
            if name in data:
                try:
                    parts[name] = read(data[name])
                except ValidationError as exc:
                    raise exc.located(name) from None
        # The stamp travels whole: a file's own version with its own stamp, else the base's.
        stamped = data if "version" in data else start.to_dict()
        stamp: dict[str, Any] = {
            k: stamped.get(k) for k in ("version", "changed_by", "effective_at", "comment")
        }
        return cls(**parts, **stamp)

    def to_toml(self) -> str:
        """These rules as a TOML document that :meth:`from_toml` reads back equal."""
        header = (
            "# salesflow rules: the stage plan, the discount policy, the contract workflow, the\n"
            "# team-bound roles and the teams' members (see docs/guide/rules.md).\n"
        )
        return header + toml_text.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str, *, base: Rules | None = None) -> Rules:
        """Rules from a TOML document (see :meth:`from_dict` for parts left out)."""
        return cls.from_dict(toml_text.loads(text, "rules"), base=base)


def _team_roles(value: object) -> frozenset[str]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidTypeError("team_roles", value, "a list of role names")
    roles = list(value)
    for i, role in enumerate(roles):
        if not isinstance(role, str):
            raise InvalidTypeError(f"team_roles[{i}]", role, "a role name")
    return frozenset(roles)


# -- diff ----------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+(\.\d+)?")

_IDENTITIES = ("key", "role", "name", "category")
"""The field that names an item of a list of tables (a stage's key, a rung's role, a step's name),
so a diff says "stage 'quotation'" rather than "stages[3]"."""


def diff_rules(old: Rules, new: Rules) -> tuple[str, ...]:
    """What changed from ``old`` to ``new``, one readable line per change, parts in
    :data:`RULE_PARTS` order::

        plan.stages['quotation'].probability: 70 -> 60
        discount_policy.ladder['sales_rep'].max_line_discount: 10 -> 8
        contract_workflow.steps: added {name = 'ceo_review', roles = ['ceo']}
        team_roles: added 'key_account'
        team_members.east: added 'carl'

    Empty when the parts are equal (the version and stamp are not compared).
    """
    if not isinstance(old, Rules) or not isinstance(new, Rules):
        raise InvalidTypeError("rules", (old, new), "two Rules")
    lines: list[str] = []
    before, after = old.to_dict(), new.to_dict()
    for name in RULE_PARTS:
        _diff(name, before[name], after[name], lines)
    return tuple(lines)


def _identity(*sides: Sequence[Any]) -> str | None:
    """The field that names every item on each side uniquely, if any."""
    items = [item for side in sides for item in side]
    if not items or not all(isinstance(item, Mapping) for item in items):
        return None
    for field in _IDENTITIES:
        if all(_names_uniquely(side, field) for side in sides):
            return field
    return None


def _names_uniquely(items: Sequence[Mapping[str, Any]], field: str) -> bool:
    names = [item.get(field) for item in items]
    return all(isinstance(n, str) for n in names) and len(set(names)) == len(names)


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, str):
        # Percentages are written as text to stay exact; a reader sees the number.
        return value if _NUMBER.fullmatch(value) else repr(value)
    return str(value)


def _diff(path: str, old: Any, new: Any, lines: list[str]) -> None:
    if old == new:
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in [*old, *(k for k in new if k not in old)]:
            where = f"{path}.{key}"
            if key not in new:
                lines.append(f"{where}: removed (was {_show(old[key])})")
            elif key not in old:
                lines.append(f"{where}: added {_show(new[key])}")
            else:
                _diff(where, old[key], new[key], lines)
        return
    if isinstance(old, list) and isinstance(new, list):
        field = _identity(old, new)
        if field is None and all(isinstance(v, str) for v in (*old, *new)):
            field = ""
        if field is not None:
            _diff_list(path, old, new, field, lines)
            return
    lines.append(f"{path}: {_show(old)} -> {_show(new)}")


def _diff_list(path: str, old: list[Any], new: list[Any], field: str, lines: list[str]) -> None:
    """Lists of scalars (``field == ""``) and of tables named by ``field``, item by item."""

    def named(items: list[Any]) -> dict[str, Any]:
        return {(item if not field else item[field]): item for item in items}

    before, after = named(old), named(new)
    if len(before) != len(old) or len(after) != len(new):  # repeated names: compare whole lists
        lines.append(f"{path}: {_show(old)} -> {_show(new)}")
        return
    for name, item in before.items():
        if name not in after:
            lines.append(f"{path}: removed {_show(item)}")
    for name, item in after.items():
        if name not in before:
            lines.append(f"{path}: added {_show(item)}")
        elif field:
            _diff(f"{path}[{name!r}]", before[name], item, lines)
    kept_old = [n for n in before if n in after]
    kept_new = [n for n in after if n in before]
    if kept_old != kept_new:
        lines.append(f"{path}: order {_show(kept_old)} -> {_show(kept_new)}")
