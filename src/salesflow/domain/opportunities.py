"""Opportunities (业务机会) and their stage history.

An :class:`Opportunity` is a frozen value: id, name, account, owner, team, industry, region, amount
(:class:`~salesflow.domain.money.Money`), stage key, expected close date, creation date, the history
of its stage changes and the storage version. Changing one returns a new value
(:meth:`Opportunity.move_to`, :meth:`Opportunity.evolve`).

A move into a lost stage records why the deal was lost: a ``reason`` code from the plan's
:attr:`~salesflow.domain.stages.StagePlan.lost_reasons` and an optional ``note``, kept on the
:class:`StageChange` (so the history says why, and in which stage the deal died).

Construction validates every field (a wrong value raises
:class:`~salesflow.errors.ValidationError` naming it) but stays cheap: a million opportunities are a
normal pipeline export, so the checks run as one fast test with a slow path that finds the culprit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import attrs

from salesflow.domain.checks import (
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    as_datetime,
    check_id,
    check_optional_id,
    check_string,
    require_text,
    shown,
)
from salesflow.domain.dates import to_date
from salesflow.domain.money import Money
from salesflow.domain.numbers import MAX_AMOUNT
from salesflow.domain.stages import REASON_MAX, StagePlan
from salesflow.errors import InvalidTypeError, StageError, ValidationError

__all__ = ["NOTE_MAX", "Opportunity", "StageChange", "check_lost_reason"]

NOTE_MAX = 2000
"""The longest note on a lost reason (characters)."""

_ID = MAX_ID_LENGTH
_NAME = MAX_NAME_LENGTH
_REQUIRED_TEXT = ("id", "owner", "stage")
_OPTIONAL_TEXT = (
    ("name", _NAME),
    ("account", _NAME),
    ("team", _ID),
    ("industry", _ID),
    ("region", _ID),
)
_OPTIONAL_NAMES = tuple(name for name, _limit in _OPTIONAL_TEXT)


def _check_reason(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidTypeError(attribute.name, value, "a lost-reason code as a string, or None")
    if not value.strip() or value != value.strip() or len(value) > REASON_MAX:
        raise ValidationError(
            attribute.name,
            value,
            f"a non-blank code without surrounding spaces, at most {REASON_MAX}",
        )
    check_string(value, attribute.name, REASON_MAX)


def _to_note(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidTypeError("note", value, "a string or None")
    text = value.strip()
    if len(text) > NOTE_MAX:
        raise ValidationError("note", f"{text[:40]}...", f"at most {NOTE_MAX} characters")
    check_string(text, "note", NOTE_MAX)
    return text or None


@attrs.frozen
class StageChange:
    """One move in an opportunity's history: when (aware datetime), from which stage, to which,
    and (keyword only) why a deal was lost.

    ``from_stage`` is ``None`` for the move that put a new opportunity in its first stage. A ``date``
    given as ``at`` is taken as midnight UTC. ``reason`` is the lost-reason code of a move into a
    lost stage (``None`` otherwise, or when a lost deal came without one, e.g. from an import) and
    ``note`` an optional free text about it (stripped; blank means ``None``; at most
    :data:`NOTE_MAX` characters; only beside a reason). Whether a reason belongs on a move is the
    plan's to say: :meth:`Opportunity.move_to` checks it.
    """

    at: datetime = attrs.field(converter=as_datetime)
    from_stage: str | None = attrs.field(validator=check_optional_id)
    to_stage: str = attrs.field(validator=check_id)
    reason: str | None = attrs.field(default=None, kw_only=True, validator=_check_reason)
    note: str | None = attrs.field(default=None, kw_only=True, converter=_to_note)

    def __attrs_post_init__(self) -> None:
        if self.note is not None and self.reason is None:
            raise ValidationError("note", self.note, "a note only beside a lost reason")

    def to_dict(self) -> dict[str, Any]:
        """This change as a plain dict (``at`` in ISO 8601)."""
        return {
            "at": self.at.isoformat(),
            "from_stage": self.from_stage,
            "to_stage": self.to_stage,
            "reason": self.reason,
            "note": self.note,
        }


def check_lost_reason(
    plan: StagePlan, stage: str, reason: str | None, note: str | None = None
) -> None:
    """Check the reason of a move into ``stage`` against ``plan``.

    A move into a lost stage needs a ``reason`` from ``plan.lost_reasons``; a move into any other
    stage takes neither reason nor note. An unknown stage raises
    :class:`~salesflow.errors.StageError`, a wrong reason or note
    :class:`~salesflow.errors.ValidationError` (naming the field, the value and what is allowed).
    """
    target = plan[stage]  # raises StageError for an unknown key
    allowed = list(plan.lost_reasons)
    if target.is_lost:
        if reason is None:
            raise ValidationError(
                "reason",
                reason,
                f"a lost reason for the move to the lost stage {stage!r}, one of {allowed}",
            )
        if reason not in plan.lost_reasons:
            raise ValidationError("reason", reason, f"one of the plan's lost reasons {allowed}")
        return
    lost = [s.key for s in plan.lost_stages]
    if reason is not None:
        raise ValidationError(
            "reason",
            reason,
            f"no reason for a move to {stage!r}, which is not a lost stage ({lost} are)",
        )
    if _to_note(note) is not None:
        raise ValidationError(
            "note", note, f"no note for a move to {stage!r}, which is not a lost stage ({lost} are)"
        )


@attrs.frozen(kw_only=True)
class Opportunity:
    """A sales opportunity.

    Required: ``id``, ``owner``, ``amount`` (non-negative :class:`Money` below
    :data:`~salesflow.domain.numbers.MAX_AMOUNT`) and ``stage`` (a stage key).
    Optional: ``name``, ``account``, ``team``, ``industry``, ``region`` (text or ``None``),
    ``expected_close`` and ``created`` (``date`` or ``None``), ``history`` (a tuple of
    :class:`StageChange`, oldest first), ``version`` (0 until first stored; storage bumps it).

    Text follows the text rules of :mod:`salesflow.domain.checks`: no NUL and no lone surrogate;
    ``id``, ``owner``, ``stage``, ``team``, ``industry`` and ``region`` at most
    :data:`~salesflow.domain.checks.MAX_ID_LENGTH` characters, ``name`` and ``account`` at most
    :data:`~salesflow.domain.checks.MAX_NAME_LENGTH`.
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
        # Printable text has no NUL and no lone surrogate (checks.check_string is the definition).
        id_, owner, stage = self.id, self.owner, self.stage
        name, account, team, industry, region = (
            self.name,
            self.account,
            self.team,
            self.industry,
            self.region,
        )
        if not (
            type(id_) is str
            and id_
            and len(id_) <= _ID
            and id_.isprintable()
            and type(owner) is str
            and owner
            and len(owner) <= _ID
            and owner.isprintable()
            and type(stage) is str
            and stage
            and len(stage) <= _ID
            and stage.isprintable()
            and type(self.amount) is Money
            and 0 <= self.amount.amount < MAX_AMOUNT
            and (name is None or (type(name) is str and len(name) <= _NAME and name.isprintable()))
            and (
                account is None
                or (type(account) is str and len(account) <= _NAME and account.isprintable())
            )
            and (team is None or (type(team) is str and len(team) <= _ID and team.isprintable()))
            and (
                industry is None
                or (type(industry) is str and len(industry) <= _ID and industry.isprintable())
            )
            and (
                region is None
                or (type(region) is str and len(region) <= _ID and region.isprintable())
            )
            and (self.expected_close is None or type(self.expected_close) is date)
            and (self.created is None or type(self.created) is date)
            and self.history == ()
            and type(self.version) is int
            and self.version >= 0
        ):
            self._validate()

    def _validate(self) -> None:
        where = f"opportunity {shown(self.id)!r}" if isinstance(self.id, str) else None
        for field in _REQUIRED_TEXT:
            require_text(getattr(self, field), field, _ID, where=where)
        for field, limit in _OPTIONAL_TEXT:
            value = getattr(self, field)
            if value is not None and not isinstance(value, str):
                raise InvalidTypeError(field, value, "a string or None", where=where)
            if value is not None:
                check_string(value, field, limit, where=where)
        if not isinstance(self.amount, Money):
            raise InvalidTypeError("amount", self.amount, "Money", where=where)
        if self.amount.amount < 0:
            raise ValidationError("amount", self.amount, "an amount of zero or more", where=where)
        if self.amount.amount >= MAX_AMOUNT:
            raise ValidationError(
                "amount", self.amount, f"an amount below {MAX_AMOUNT:,f}", where=where
            )
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
        self,
        stage: str,
        at: datetime | date,
        *,
        plan: StagePlan | None = None,
        reason: str | None = None,
        note: str | None = None,
    ) -> Opportunity:
        """This opportunity moved to ``stage`` at ``at``, with the move appended to its history.

        With ``plan`` the target stage must exist in it, and a move into a lost stage must give a
        ``reason``, one of the plan's :attr:`~salesflow.domain.stages.StagePlan.lost_reasons`,
        plus an optional ``note``; a reason (or note) on a move to any other stage is refused.
        Without a plan the stage's outcome is unknown, so a reason is recorded as given and none
        is required. Moving to the current stage, or to a time before the last recorded move,
        raises :class:`~salesflow.errors.StageError` / :class:`~salesflow.errors.ValidationError`;
        so does a missing or unknown reason (naming ``reason``, the value and the codes allowed).
        This opportunity itself never changes.
        """
        if plan is not None:
            check_lost_reason(plan, stage, reason, note)
        if stage == self.stage:
            raise StageError("stage", stage, f"a stage other than the current {self.stage!r}")
        change = StageChange(at, self.stage, stage, reason=reason, note=note)
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

        A deal already lost may say why in ``lost_reason``: a code of the plan's lost reasons
        (``plan``, or the default plan when none is given), refused on a stage that is not lost.
        It is recorded as the opportunity's one stage change, into its lost stage from an unknown
        one (``from_stage=None``), dated by the expected close date, else the creation date
        (midnight UTC); a row with neither date cannot say when and is refused. Without a
        ``lost_reason`` a lost deal has no history, and so no recorded reason.
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
            texts = {name: cell(name) for name in _OPTIONAL_NAMES}
            for name, value in texts.items():
                if value is not None and not isinstance(value, str):
                    texts[name] = str(value)
            history: tuple[StageChange, ...] = ()
            reason = cell("lost_reason")
            if reason is not None:
                reason = str(reason)
                check_lost_reason(StagePlan.default() if plan is None else plan, stage, reason)
                when = dates["expected_close"] or dates["created"]
                if when is None:
                    raise ValidationError(
                        "lost_reason",
                        reason,
                        "an expected_close or created date beside it, to date the loss",
                    )
                history = (StageChange(when, None, stage, reason=reason),)
            return cls(
                id=str(cell("id")),
                owner=str(cell("owner")),
                amount=amount,
                stage=stage,
                expected_close=dates["expected_close"],
                created=dates["created"],
                history=history,
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
