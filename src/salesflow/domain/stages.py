"""Sales stages and the stage plan (R1): configuration, not code.

A :class:`StagePlan` is an ordered list of :class:`Stage` values, each with a key, a display name, a
win probability (a percentage, 0..100) and an outcome (open, won or lost), plus the forecast
threshold (R2: only open stages whose probability is at least the threshold count). A valid plan has
unique keys, exactly one won stage (probability 100) and at least one lost stage (probability 0).

A plan also lists the **lost reasons**: the codes a move into a lost stage must name (why the deal
was lost), :data:`DEFAULT_LOST_REASONS` unless configured. A valid list is non-empty, its codes
unique non-blank strings of at most :data:`REASON_MAX` characters without surrounding spaces.

Plans load from and dump to plain dicts, so they can live in a JSON or TOML file::

    {"threshold": 70,
     "stages": [{"key": "initial_contact", "name": "Initial contact", "probability": 10}, ...,
                {"key": "won", "name": "Won", "probability": 100, "outcome": "won"}],
     "lost_reasons": ["price", "competitor", "no_budget", "no_decision", "timing",
                      "product_fit", "other"]}

``"lost_reasons"`` is optional (the default list when left out).

Each stage also has a **forecast category** (:class:`ForecastCategory`: pipeline, best case,
commit, closed, omitted), given as ``"category"`` in its dict or derived when left out
(:meth:`StagePlan.category`): the won stage is ``closed``, a lost stage ``omitted``, an open stage
``commit`` when its probability reaches the plan's threshold and ``pipeline`` below it. A given
category must fit the outcome: ``closed`` only for the won stage, ``omitted`` for every lost stage,
and an open stage is ``pipeline``, ``best_case``, ``commit`` or ``omitted``. A stage dumps its
category only when one was given, so a plan round-trips exactly (TOML: ``category = "best_case"``
in a ``[[stages]]`` table).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import attrs

from salesflow.domain.checks import (
    MAX_CODE_LENGTH,
    as_enum,
    as_optional_enum,
    as_percent,
    as_tuple,
    check_id,
    check_name,
    check_string,
)
from salesflow.domain.numbers import HUNDRED, ZERO, to_percent
from salesflow.errors import InvalidTypeError, StageError, ValidationError

__all__ = [
    "DEFAULT_LOST_REASONS",
    "REASON_MAX",
    "ForecastCategory",
    "Outcome",
    "Stage",
    "StagePlan",
]

DEFAULT_LOST_REASONS: tuple[str, ...] = (
    "price",
    "competitor",
    "no_budget",
    "no_decision",
    "timing",
    "product_fit",
    "other",
)
"""The lost-reason codes of a plan that configures none."""

REASON_MAX = MAX_CODE_LENGTH
"""The longest lost-reason code (characters), so that every backend stores it as it is."""


class Outcome(enum.Enum):
    """Whether a stage is still open, or ends the opportunity as won or lost."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"


class ForecastCategory(enum.Enum):
    """Where a deal stands in the forecast: a rep's call rather than a stage's probability.

    The cumulative figures build on each other: *commit* = commit + closed, *best case* =
    best_case + commit + closed, *pipeline* = every open deal that is not omitted.
    """

    PIPELINE = "pipeline"
    BEST_CASE = "best_case"
    COMMIT = "commit"
    CLOSED = "closed"
    OMITTED = "omitted"


@attrs.frozen(kw_only=True)
class Stage:
    """One sales stage: key, display name, win probability (percent), outcome and (optional)
    forecast category (``None``: derived by the plan, see :meth:`StagePlan.category`)."""

    key: str = attrs.field(validator=check_id)
    name: str = attrs.field(validator=check_name)
    probability: Decimal = attrs.field(converter=as_percent)
    outcome: Outcome = attrs.field(
        default=Outcome.OPEN, converter=as_enum, metadata={"enum": Outcome}
    )
    category: ForecastCategory | None = attrs.field(
        default=None, converter=as_optional_enum, metadata={"enum": ForecastCategory}
    )

    def __attrs_post_init__(self) -> None:
        category = self.category
        if category is None:
            return
        if self.is_won and category is not ForecastCategory.CLOSED:
            raise ValidationError("category", category.value, "'closed' for the won stage")
        if self.is_lost and category is not ForecastCategory.OMITTED:
            raise ValidationError("category", category.value, "'omitted' for a lost stage")
        if self.is_open and category is ForecastCategory.CLOSED:
            raise ValidationError(
                "category",
                category.value,
                "pipeline, best_case, commit or omitted for an open stage",
            )

    @property
    def is_open(self) -> bool:
        """Whether an opportunity in this stage is still being worked."""
        return self.outcome is Outcome.OPEN

    @property
    def is_won(self) -> bool:
        """Whether this stage means the deal was signed."""
        return self.outcome is Outcome.WON

    @property
    def is_lost(self) -> bool:
        """Whether this stage means the deal was lost."""
        return self.outcome is Outcome.LOST

    def to_dict(self) -> dict[str, Any]:
        """This stage as a plain dict (probability as a string, to stay exact in JSON; the
        category only when one was given)."""
        data = {
            "key": self.key,
            "name": self.name,
            "probability": str(self.probability),
            "outcome": self.outcome.value,
        }
        if self.category is not None:
            data["category"] = self.category.value
        return data


def _to_lost_reasons(value: object) -> tuple[str, ...]:
    if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__iter__"):
        raise InvalidTypeError("lost_reasons", value, "a sequence of reason codes")
    codes = tuple(value)
    if not codes:
        raise ValidationError("lost_reasons", codes, "at least one reason code")
    seen: set[str] = set()
    for i, code in enumerate(codes):
        if not isinstance(code, str):
            raise InvalidTypeError(f"lost_reasons[{i}]", code, "a reason code as a string")
        if not code.strip() or code != code.strip() or len(code) > REASON_MAX:
            raise ValidationError(
                f"lost_reasons[{i}]",
                code,
                f"a non-blank code without surrounding spaces, at most {REASON_MAX} characters",
            )
        check_string(code, f"lost_reasons[{i}]", REASON_MAX)
        if code in seen:
            raise ValidationError(f"lost_reasons[{i}]", code, "a code used by no other reason")
        seen.add(code)
    return codes


@attrs.frozen
class StagePlan:
    """An ordered, validated list of stages, the forecast threshold (percent, inclusive) and the
    lost-reason codes (keyword only; :data:`DEFAULT_LOST_REASONS` by default).

    Look stages up with ``plan["quotation"]``, test membership with ``"won" in plan``, iterate in
    order. Unknown keys raise :class:`~salesflow.errors.StageError`.
    """

    stages: tuple[Stage, ...] = attrs.field(converter=as_tuple, metadata={"items": Stage})
    threshold: Decimal = attrs.field(default=Decimal(70), converter=as_percent)
    lost_reasons: tuple[str, ...] = attrs.field(
        default=DEFAULT_LOST_REASONS, converter=_to_lost_reasons, kw_only=True
    )
    """The codes a move into a lost stage must name, in display order."""
    _by_key: Mapping[str, Stage] = attrs.field(init=False, repr=False, eq=False)
    _by_name: Mapping[str, Stage] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        by_key: dict[str, Stage] = {}
        for i, stage in enumerate(self.stages):
            if stage.key in by_key:
                raise ValidationError(f"stages[{i}].key", stage.key, "a key used by no other stage")
            by_key[stage.key] = stage
        won = [s for s in self.stages if s.is_won]
        if len(won) != 1:
            raise ValidationError(
                "stages", [s.key for s in won], "exactly one stage with outcome 'won'"
            )
        if won[0].probability != HUNDRED:
            raise ValidationError(
                f"stages[{won[0].key!r}].probability", won[0].probability, "100 for the won stage"
            )
        lost = [s for s in self.stages if s.is_lost]
        if not lost:
            raise ValidationError("stages", [s.key for s in self.stages], "at least one lost stage")
        for stage in lost:
            if stage.probability != ZERO:
                raise ValidationError(
                    f"stages[{stage.key!r}].probability", stage.probability, "0 for a lost stage"
                )
        by_name: dict[str, Stage] = {}
        for stage in self.stages:
            by_name.setdefault(stage.name.casefold(), stage)
        object.__setattr__(self, "_by_key", by_key)
        object.__setattr__(self, "_by_name", by_name)

    @classmethod
    def default(cls) -> StagePlan:
        """The plan of the requirements (R1): initial contact 10 %, needs analysis 30 %, intent
        confirmed 50 %, quotation 70 %, won 100 %, lost 0 %; forecast threshold 70 %."""
        return cls.from_dict(
            {
                "threshold": 70,
                "stages": [
                    {"key": "initial_contact", "name": "Initial contact", "probability": 10},
                    {"key": "needs_analysis", "name": "Needs analysis", "probability": 30},
                    {"key": "intent_confirmed", "name": "Intent confirmed", "probability": 50},
                    {"key": "quotation", "name": "Quotation", "probability": 70},
                    {"key": "won", "name": "Won", "probability": 100, "outcome": "won"},
                    {"key": "lost", "name": "Lost", "probability": 0, "outcome": "lost"},
                ],
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StagePlan:
        """Build a plan from a plain dict (see the module docs for the shape).

        A stage without ``"name"`` takes its key as name; without ``"outcome"`` it is open. Without
        ``"lost_reasons"`` the plan has :data:`DEFAULT_LOST_REASONS`.
        """
        if not isinstance(data, Mapping):
            raise InvalidTypeError("plan", data, "a mapping with 'stages' and 'threshold'")
        unknown = set(data) - {"stages", "threshold", "lost_reasons"}
        if unknown:
            raise ValidationError(
                "plan", sorted(unknown), "only the keys 'stages', 'threshold' and 'lost_reasons'"
            )
        raw = data.get("stages")
        if not isinstance(raw, list | tuple):
            raise InvalidTypeError("stages", raw, "a list of stage dicts")
        stages = []
        for i, item in enumerate(raw):
            if not isinstance(item, Mapping):
                raise InvalidTypeError(f"stages[{i}]", item, "a dict with key and probability")
            extra = set(item) - {"key", "name", "probability", "outcome", "category"}
            if extra:
                raise ValidationError(
                    f"stages[{i}]",
                    sorted(extra),
                    "only key, name, probability, outcome and category",
                )
            if "key" not in item or "probability" not in item:
                raise ValidationError(f"stages[{i}]", dict(item), "a 'key' and a 'probability'")
            try:
                stages.append(
                    Stage(
                        key=item["key"],
                        name=item.get("name", item["key"]),
                        probability=item["probability"],
                        outcome=item.get("outcome", "open"),
                        category=item.get("category"),
                    )
                )
            except ValidationError as exc:
                raise exc.located(f"stages[{i}]") from None
        return cls(
            stages,
            data.get("threshold", Decimal(70)),
            lost_reasons=data.get("lost_reasons", DEFAULT_LOST_REASONS),
        )

    def to_dict(self) -> dict[str, Any]:
        """This plan as a plain dict that :meth:`from_dict` reads back."""
        return {
            "threshold": str(self.threshold),
            "stages": [s.to_dict() for s in self.stages],
            "lost_reasons": list(self.lost_reasons),
        }

    # -- lookup ---------------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Stage:
        try:
            return self._by_key[key]
        except (KeyError, TypeError):
            raise StageError("stage", key, f"one of {list(self._by_key)}") from None

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __iter__(self) -> Iterator[Stage]:
        return iter(self.stages)

    def __len__(self) -> int:
        return len(self.stages)

    @property
    def keys(self) -> tuple[str, ...]:
        """Stage keys in plan order."""
        return tuple(self._by_key)

    def resolve(self, text: str) -> Stage:
        """The stage whose key is ``text``, or else whose display name matches it ignoring case
        (so a CSV saying ``Quotation`` finds the ``quotation`` stage)."""
        stage = self._by_key.get(text)
        if stage is None and isinstance(text, str):
            stage = self._by_name.get(text.strip().casefold())
        if stage is None:
            raise StageError("stage", text, f"one of {list(self._by_key)}")
        return stage

    def index(self, key: str) -> int:
        """Position of stage ``key`` in the plan (0-based)."""
        return self.stages.index(self[key])

    def probability(self, key: str) -> Decimal:
        """Win probability (percent) of stage ``key``."""
        return self[key].probability

    def is_open(self, key: str) -> bool:
        """Whether stage ``key`` is open."""
        return self[key].is_open

    def is_won(self, key: str) -> bool:
        """Whether stage ``key`` is the won stage."""
        return self[key].is_won

    def is_lost(self, key: str) -> bool:
        """Whether stage ``key`` is a lost stage."""
        return self[key].is_lost

    @property
    def won_stage(self) -> Stage:
        """The single won stage."""
        return next(s for s in self.stages if s.is_won)

    @property
    def open_stages(self) -> tuple[Stage, ...]:
        """The open stages, in order."""
        return tuple(s for s in self.stages if s.is_open)

    def forecast_stages(self, threshold: Decimal | int | str | None = None) -> tuple[Stage, ...]:
        """Open stages whose probability reaches ``threshold`` (the plan's own when omitted)."""
        limit = self.threshold if threshold is None else to_percent(threshold, "threshold")
        return tuple(s for s in self.stages if s.is_open and s.probability >= limit)

    def category(self, key: str) -> ForecastCategory:
        """The forecast category of stage ``key``: its own when configured, else derived (won:
        closed; lost: omitted; open: commit at or above the plan's threshold, pipeline below)."""
        stage = self[key]
        if stage.category is not None:
            return stage.category
        if stage.is_won:
            return ForecastCategory.CLOSED
        if stage.is_lost:
            return ForecastCategory.OMITTED
        if stage.probability >= self.threshold:
            return ForecastCategory.COMMIT
        return ForecastCategory.PIPELINE

    @property
    def categories(self) -> dict[str, ForecastCategory]:
        """Stage key -> forecast category (configured or derived), in plan order."""
        return {s.key: self.category(s.key) for s in self.stages}

    @property
    def lost_stages(self) -> tuple[Stage, ...]:
        """The lost stages, in order."""
        return tuple(s for s in self.stages if s.is_lost)

    def with_threshold(self, threshold: Decimal | int | str) -> StagePlan:
        """A copy of this plan with another forecast threshold."""
        return StagePlan(self.stages, threshold, lost_reasons=self.lost_reasons)

    def with_lost_reasons(self, codes: Iterable[str]) -> StagePlan:
        """A copy of this plan with other lost-reason codes."""
        return StagePlan(self.stages, self.threshold, lost_reasons=codes)
