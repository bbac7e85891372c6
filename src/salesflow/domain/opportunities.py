"""Opportunities (业务机会) and their stage history.

An :class:`Opportunity` is a frozen value: id, name, account, owner, team, industry, region, amount
(:class:`~salesflow.domain.money.Money`), stage key, expected close date, creation date, the history
of its stage changes and the storage version. Changing one returns a new value
(:meth:`Opportunity.move_to`, :meth:`Opportunity.evolve`).

Construction validates every field (a wrong value raises
:class:`~salesflow.errors.ValidationError` naming it) but stays cheap: a million opportunities are a
normal pipeline export, so the checks run as one fast test with a slow path that finds the culprit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import attrs

from salesflow.domain.dates import to_aware_datetime, to_date
from salesflow.domain.money import Money
from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError, StageError, ValidationError

__all__ = ["Opportunity", "StageChange"]

_OPTIONAL_TEXT = ("name", "account", "team", "industry", "region")
_REQUIRED_TEXT = ("id", "owner", "stage")


def _to_at(value: object) -> datetime:
    return to_aware_datetime(value, "at")


def _check_stage_key(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.name == "from_stage":
        return
    if not isinstance(value, str) or not value:
        raise ValidationError(attribute.name, value, "a stage key")


@attrs.frozen
class StageChange:
    """One move in an opportunity's history: when (aware datetime), from which stage, to which.

    ``from_stage`` is ``None`` for the move that put a new opportunity in its first stage. A ``date``
    given as ``at`` is taken as midnight UTC.
    """

    at: datetime = attrs.field(converter=_to_at)
    from_stage: str | None = attrs.field(validator=_check_stage_key)
    to_stage: str = attrs.field(validator=_check_stage_key)

    def to_dict(self) -> dict[str, Any]:
        """This change as a plain dict (``at`` in ISO 8601)."""
        return {"at": self.at.isoformat(), "from_stage": self.from_stage, "to_stage": self.to_stage}


@attrs.frozen(kw_only=True)
class Opportunity:
    """A sales opportunity.

    Required: ``id``, ``owner``, ``amount`` (non-negative :class:`Money`) and ``stage`` (a stage key).
    Optional: ``name``, ``account``, ``team``, ``industry``, ``region`` (text or ``None``),
    ``expected_close`` and ``created`` (``date`` or ``None``), ``history`` (a tuple of
    :class:`StageChange`, oldest first), ``version`` (0 until first stored; storage bumps it).
    """

    id: str
    owner: str
    amount: Money
    stage: str
    name: str | None = None
    account: str | None = None
    team: str | None = None
    industry: str | None = None
    region: str | None = None
    expected_close: date | None = None
    created: date | None = None
    history: tuple[StageChange, ...] = ()
    version: int = 0

    def __attrs_post_init__(self) -> None:
        # One cheap test for the common, valid case; _validate() names the field otherwise.
        if not (
            type(self.id) is str
            and self.id
            and type(self.owner) is str
            and self.owner
            and type(self.stage) is str
            and self.stage
            and type(self.amount) is Money
            and self.amount.amount >= 0
            and (self.name is None or type(self.name) is str)
            and (self.account is None or type(self.account) is str)
            and (self.team is None or type(self.team) is str)
            and (self.industry is None or type(self.industry) is str)
            and (self.region is None or type(self.region) is str)
            and (self.expected_close is None or type(self.expected_close) is date)
            and (self.created is None or type(self.created) is date)
            and self.history == ()
            and type(self.version) is int
            and self.version >= 0
        ):
            self._validate()

    def _validate(self) -> None:
        where = f"opportunity {self.id!r}" if isinstance(self.id, str) else None
        for field in _REQUIRED_TEXT:
            value = getattr(self, field)
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(field, value, "a non-empty string", where=where)
        for field in _OPTIONAL_TEXT:
            value = getattr(self, field)
            if value is not None and not isinstance(value, str):
                raise InvalidTypeError(field, value, "a string or None", where=where)
        if not isinstance(self.amount, Money):
            raise InvalidTypeError("amount", self.amount, "Money", where=where)
        if self.amount.amount < 0:
            raise ValidationError("amount", self.amount, "an amount of zero or more", where=where)
        for field in ("expected_close", "created"):
            value = getattr(self, field)
            if value is not None and (type(value) is not date):
                object.__setattr__(self, field, to_date(value, field, where=where))
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 0:
            raise ValidationError("version", self.version, "an int of zero or more", where=where)
        self._validate_history(where)

    def _validate_history(self, where: str | None) -> None:
        history = self.history
        if isinstance(history, list):
            history = tuple(history)
            object.__setattr__(self, "history", history)
        if not isinstance(history, tuple):
            raise InvalidTypeError("history", history, "a tuple of StageChange", where=where)
        previous: StageChange | None = None
        for i, change in enumerate(history):
            if not isinstance(change, StageChange):
                raise InvalidTypeError(f"history[{i}]", change, "a StageChange", where=where)
            if previous is not None:
                if change.at < previous.at:
                    raise ValidationError(
                        f"history[{i}].at", change.at, "changes in time order", where=where
                    )
                if change.from_stage != previous.to_stage:
                    raise ValidationError(
                        f"history[{i}].from_stage",
                        change.from_stage,
                        f"{previous.to_stage!r}, where the previous change ended",
                        where=where,
                    )
            previous = change
        if previous is not None and previous.to_stage != self.stage:
            raise ValidationError(
                "history",
                previous.to_stage,
                f"a last change that ends in the current stage {self.stage!r}",
                where=where,
            )

    # -- changes ------------------------------------------------------------------------------

    def move_to(
        self, stage: str, at: datetime | date, *, plan: StagePlan | None = None
    ) -> Opportunity:
        """This opportunity moved to ``stage`` at ``at``, with the move appended to its history.

        With ``plan`` the target stage must exist in it. Moving to the current stage, or to a time
        before the last recorded move, raises :class:`~salesflow.errors.StageError` /
        :class:`~salesflow.errors.ValidationError`.
        """
        if plan is not None:
            plan[stage]  # raises StageError for an unknown key
        if stage == self.stage:
            raise StageError("stage", stage, f"a stage other than the current {self.stage!r}")
        change = StageChange(at, self.stage, stage)
        if self.history and change.at < self.history[-1].at:
            raise ValidationError(
                "at", at, f"a time at or after the last move ({self.history[-1].at.isoformat()})"
            )
        return attrs.evolve(self, stage=stage, history=(*self.history, change))

    def evolve(self, **changes: Any) -> Opportunity:
        """A copy with ``changes`` applied and validated (``stage`` changes go through
        :meth:`move_to`, so history stays true)."""
        if "stage" in changes or "history" in changes:
            raise ValidationError(
                "changes", sorted(changes), "no 'stage' or 'history' (use move_to to change stage)"
            )
        return attrs.evolve(self, **changes)

    # -- records -------------------------------------------------------------------------------

    @classmethod
    def from_record(
        cls,
        record: Mapping[str, Any],
        *,
        plan: StagePlan | None = None,
        currency: str | None = None,
        dayfirst: bool = False,
        where: str | None = None,
    ) -> Opportunity:
        """Parse a CSV row or dict of text into an opportunity.

        Keys are the field names (``id``, ``owner``, ``amount``, ``currency``, ``stage``,
        ``expected_close``, ...); other keys are ignored and empty strings mean "missing". The
        amount is parsed as a ``Decimal``; its currency is the record's ``currency`` or else
        ``currency``. Dates go through dateutil (ISO first; ``dayfirst`` for ``26/11/2026``). With
        ``plan`` the stage cell may hold a stage key or display name and must exist in the plan.
        An error is a :class:`~salesflow.errors.ValidationError` naming the field and ``where``.
        """
        if not isinstance(record, Mapping):
            raise InvalidTypeError(
                "record", record, "a mapping of field name to value", where=where
            )

        def cell(name: str) -> Any:
            value = record.get(name)
            if isinstance(value, str):
                value = value.strip()
                return value or None
            return value

        try:
            for name in (*_REQUIRED_TEXT, "amount"):
                if cell(name) is None:
                    raise ValidationError(name, None, "a value")
            code = cell("currency") or currency
            if code is None:
                raise ValidationError("currency", None, "a currency column or currency=...")
            amount = Money.of(cell("amount"), str(code).upper())
            stage = str(cell("stage"))
            if plan is not None:
                stage = plan.resolve(stage).key
            dates = {
                name: None if cell(name) is None else to_date(cell(name), name, dayfirst=dayfirst)
                for name in ("expected_close", "created")
            }
            texts = {name: cell(name) for name in _OPTIONAL_TEXT}
            for name, value in texts.items():
                if value is not None and not isinstance(value, str):
                    texts[name] = str(value)
            return cls(
                id=str(cell("id")),
                owner=str(cell("owner")),
                amount=amount,
                stage=stage,
                expected_close=dates["expected_close"],
                created=dates["created"],
                **texts,
            )
        except ValidationError as exc:
            raise (exc.located(where) if where else exc) from None

    def to_record(self) -> dict[str, Any]:
        """This opportunity as a flat dict of text-friendly values (the inverse of
        :meth:`from_record`; history and version are not included)."""
        return {
            "id": self.id,
            "name": self.name,
            "account": self.account,
            "owner": self.owner,
            "team": self.team,
            "industry": self.industry,
            "region": self.region,
            "amount": str(self.amount.amount),
            "currency": self.amount.currency,
            "stage": self.stage,
            "expected_close": None
            if self.expected_close is None
            else self.expected_close.isoformat(),
            "created": None if self.created is None else self.created.isoformat(),
        }
