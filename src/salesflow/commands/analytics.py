"""SalesDesk reads that analyse the stored opportunities over a time window: the mix
(:meth:`AnalyticsCommands.distribution`), rep strengths (:meth:`AnalyticsCommands.rep_strengths`,
:meth:`AnalyticsCommands.recommend_owners`), stage velocity and learned probabilities.

Each read is the pure calculator of :mod:`salesflow.analytics` over what is stored, with the same
``created=`` and ``closed=`` windows (a :class:`~salesflow.domain.periods.Period` or a ``(start,
end)`` pair of dates, both inclusive; see :mod:`salesflow.analytics.windows`), so that won deals
do not pile up over the years in every share. The day of a stage change is its date in the
desk's ``timezone`` (UTC when the desk has none). With ``actor=``, only the opportunities that
actor may read count (a rep or a manager sees their team's).

What runs in the database: the storage query selects the rows (``**filters`` such as ``team=``
or ``owner=``, and with a ``closed=`` window only the won and lost stages, since an open deal has
not closed). A backend with :data:`~salesflow.ports.WINDOW_PUSHDOWN` (the SQL storage) also
selects by the window's days: the ``created`` date or the first stage change, the moves into a
won or lost stage (or the expected close of a closed deal without one), compared a little wider
than the window so that any time zone's day is kept. The window's exact days are then checked on
each row as it streams past, in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from salesflow.analytics.distribution import Distribution, distribution
from salesflow.analytics.grouping import MISSING
from salesflow.analytics.strengths import (
    DEFAULT_PRIOR_STRENGTH,
    Recommendation,
    RepIndustryMatrix,
    recommend_owners,
    rep_industry_matrix,
)
from salesflow.analytics.velocity import (
    LearnedProbabilities,
    StageVelocity,
    learned_probabilities,
    stage_velocity,
)
from salesflow.analytics.windows import Window, WindowLike, to_window
from salesflow.commands.core import DeskCore
from salesflow.domain.actors import Actor
from salesflow.domain.opportunities import Opportunity
from salesflow.ports import WINDOW_PUSHDOWN, UnitOfWork
from salesflow.storage.queries import narrow_stages

__all__ = ["AnalyticsCommands", "select_window"]


def select_window(
    desk: DeskCore,
    uow: UnitOfWork,
    actor: Actor | None,
    *,
    created: WindowLike = None,
    closed: WindowLike = None,
    **filters: Any,
) -> Iterator[Opportunity]:
    """The stored opportunities matching ``filters`` that ``actor`` may read on ``desk``,
    selected for the windows in storage where it can (a ``closed=`` window reads only the won
    and lost stages; a ``stage`` filter narrows them further; a backend with
    :data:`~salesflow.ports.WINDOW_PUSHDOWN` selects the days too). The windows are checked
    here, before anything is read; the calculator checks each row's days, so the rows may
    include some outside the windows."""
    created_window = to_window(created, "created")
    closed_window = to_window(closed, "closed")
    closed_stages = [s.key for s in desk.plan if not s.is_open]
    if closed_window is not None:
        filters["stage"] = narrow_stages(closed_stages, filters.pop("stage", None))
    windowed = created_window is not None or closed_window is not None
    if windowed and WINDOW_PUSHDOWN in getattr(desk.storage, "capabilities", ()):
        rows = uow.opportunities.query_window(  # type: ignore[attr-defined]
            created=_bounds(created_window),
            closed=_bounds(closed_window),
            closed_stages=closed_stages,
            **filters,
        )
    else:
        rows = uow.opportunities.query(**filters)
    return desk.visible(actor, "opportunity", rows)


def _bounds(window: Window | None) -> tuple[date | None, date | None] | None:
    return None if window is None else (window.start, window.end)


class AnalyticsCommands(DeskCore):
    """Distribution, rep strengths, stage velocity and learned probabilities over what the desk
    stores, in a time window."""

    def distribution(
        self,
        *,
        dimension: str = "industry",
        by: Sequence[str] | str = "owner",
        missing: str = MISSING,
        places: int = 1,
        created: WindowLike = None,
        closed: WindowLike = None,
        actor: Actor | None = None,
        **filters: Any,
    ) -> Distribution:
        """The mix of the stored opportunities over ``dimension`` (R5), per ``by`` and for the
        team (see :func:`~salesflow.analytics.distribution.distribution`), of those created in
        ``created`` and closed in ``closed``, matching ``filters`` and readable by ``actor``."""
        with self.storage.transaction() as uow:
            return distribution(
                select_window(self, uow, actor, created=created, closed=closed, **filters),
                dimension=dimension,
                by=by,
                missing=missing,
                places=places,
                currency=self.currency,
                plan=self.plan,
                created=created,
                closed=closed,
                tz=self.timezone,
            )

    def rep_strengths(
        self,
        *,
        by: Sequence[str] | str = "owner",
        dimension: str = "industry",
        prior_strength: Decimal | int | str = DEFAULT_PRIOR_STRENGTH,
        missing: str = MISSING,
        places: int = 1,
        created: WindowLike = None,
        closed: WindowLike = None,
        actor: Actor | None = None,
        **filters: Any,
    ) -> RepIndustryMatrix:
        """The win record per rep and industry with a smoothed win rate (R17, see
        :func:`~salesflow.analytics.strengths.rep_industry_matrix`) of the stored opportunities
        created in ``created`` and closed in ``closed`` (a ``closed=`` window leaves the open
        ones out), matching ``filters`` and readable by ``actor``."""
        with self.storage.transaction() as uow:
            return rep_industry_matrix(
                select_window(self, uow, actor, created=created, closed=closed, **filters),
                self.plan,
                by=by,
                dimension=dimension,
                prior_strength=prior_strength,
                missing=missing,
                places=places,
                currency=self.currency,
                created=created,
                closed=closed,
                tz=self.timezone,
            )

    def recommend_owners(
        self,
        industry: Any,
        *,
        top: int = 3,
        among: Iterable[Any] | None = None,
        prior_strength: Decimal | int | str = DEFAULT_PRIOR_STRENGTH,
        created: WindowLike = None,
        closed: WindowLike = None,
        actor: Actor | None = None,
        **filters: Any,
    ) -> Recommendation:
        """The ``top`` reps for a new customer in ``industry``, best first (see
        :func:`~salesflow.analytics.strengths.recommend_owners`), from :meth:`rep_strengths`
        over the same windows, ``filters`` and ``actor``."""
        matrix = self.rep_strengths(
            prior_strength=prior_strength, created=created, closed=closed, actor=actor, **filters
        )
        return recommend_owners(matrix, industry, top=top, among=among)

    def stage_velocity(
        self,
        *,
        by: Sequence[str] | str = (),
        as_of: datetime | date | None = None,
        places: int = 1,
        created: WindowLike = None,
        closed: WindowLike = None,
        actor: Actor | None = None,
        **filters: Any,
    ) -> StageVelocity:
        """How long the stored opportunities stay in each stage and where they go next (see
        :func:`~salesflow.analytics.velocity.stage_velocity`), of those created in ``created``
        and closed in ``closed``, matching ``filters`` and readable by ``actor``; changes after
        ``as_of`` are ignored."""
        with self.storage.transaction() as uow:
            return stage_velocity(
                select_window(self, uow, actor, created=created, closed=closed, **filters),
                self.plan,
                by=by,
                as_of=as_of,
                places=places,
                created=created,
                closed=closed,
                tz=self.timezone,
            )

    def learned_probabilities(
        self,
        *,
        as_of: datetime | date | None = None,
        places: int = 1,
        created: WindowLike = None,
        closed: WindowLike = None,
        actor: Actor | None = None,
        **filters: Any,
    ) -> LearnedProbabilities:
        """The win probability of each open stage as the stored history shows it, beside the
        plan's (see :func:`~salesflow.analytics.velocity.learned_probabilities`), from the
        opportunities created in ``created`` and closed in ``closed`` (``closed=`` learns from
        a recent span only), matching ``filters`` and readable by ``actor``; changes after
        ``as_of`` are ignored."""
        with self.storage.transaction() as uow:
            return learned_probabilities(
                select_window(self, uow, actor, created=created, closed=closed, **filters),
                self.plan,
                as_of=as_of,
                places=places,
                created=created,
                closed=closed,
                tz=self.timezone,
            )
