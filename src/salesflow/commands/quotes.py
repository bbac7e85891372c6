"""SalesDesk commands and reads for the catalog and quotes (R9-R11).

Reps sell only real products at allowed prices: quotes are built from the stored catalog, and
submitting one asks the desk's :class:`~salesflow.domain.discounts.DiscountPolicy`. Within the
submitter's authority it is approved at once (recorded in the event log); beyond it, an approval
request for the lowest sufficient role is opened; a forbidden quote (below a floor, beyond the top
role) cannot be submitted. Changing a quote after submission sends it back to draft, and an approval
given to the old content no longer counts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import attrs

from salesflow.commands.approvals import ApprovalCommands
from salesflow.commands.core import CommandResult
from salesflow.domain.actors import Actor
from salesflow.domain.approvals import Workflow
from salesflow.domain.catalog import Catalog
from salesflow.domain.discounts import DiscountVerdict, RouteDecision, route_quote
from salesflow.domain.events import Event
from salesflow.domain.quotes import Quote, QuoteState
from salesflow.domain.taxes import TaxRate
from salesflow.errors import ConcurrencyError, InvalidTypeError, ValidationError
from salesflow.ports import UnitOfWork

__all__ = ["QuoteCommands"]

_DRAFT: dict[str, Any] = {
    "state": QuoteState.DRAFT,
    "rejection_reason": None,
    "contract_id": None,
    "rules_version": None,
}
"""The lifecycle fields of a quote handed to ``create_quote`` or ``update_quote``: a draft, not
rejected, contracted or judged under a rules version (the desk's commands set those)."""


class QuoteCommands(ApprovalCommands):
    """The catalog and quotes on the desk."""

    # -- the catalog ----------------------------------------------------------------------------------

    def catalog(self) -> Catalog:
        """The stored catalog: every category, product and bundle, with its version."""
        with self.storage.transaction() as uow:
            return self._catalog(uow)

    def _catalog(self, uow: UnitOfWork) -> Catalog:
        return Catalog(
            categories=tuple(uow.categories.query()),
            products=tuple(uow.products.query()),
            bundles=tuple(uow.bundles.query()),
            version=_catalog_version(uow),
        )

    def update_catalog(self, actor: Actor, catalog: Catalog) -> CommandResult[Catalog]:
        """Replace the stored catalog with ``catalog`` (validated as a whole first), read at
        ``catalog.version``: new items are added, changed ones saved, missing ones removed. A
        stale catalog raises :class:`~salesflow.errors.ConcurrencyError`. Quotes already made
        keep their prices; draft quotes must be repriced (:meth:`Quote.repriced`) before they are
        submitted."""
        if not isinstance(catalog, Catalog):
            raise InvalidTypeError("catalog", catalog, "a Catalog")
        self.authorize(actor, "catalog.update", catalog)

        def work(uow: UnitOfWork, events: list[Event]) -> Catalog:
            current = _catalog_version(uow)
            if catalog.version != current:
                raise ConcurrencyError(
                    "catalog",
                    "catalog",
                    catalog.version,
                    current,
                    message=f"the catalog was read at version {catalog.version} but is at "
                    f"version {current}: reload it (desk.catalog()) and apply the change again",
                )
            parts: list[tuple[Any, tuple[Any, ...], Callable[[Any], str]]] = [
                (uow.categories, catalog.categories, lambda c: str(c.id)),
                (uow.products, catalog.products, lambda p: str(p.sku)),
                (uow.bundles, catalog.bundles, lambda b: str(b.sku)),
            ]
            changed = 0
            for repository, items, key in parts:
                wanted = {key(item): item for item in items}
                for stored_key in list(repository.ids()):
                    if stored_key not in wanted:
                        repository.get(stored_key)
                        repository.delete(stored_key)
                        changed += 1
                for item_key, item in wanted.items():
                    stored = repository.find(item_key)
                    if stored is None:
                        repository.add(item)
                        changed += 1
                    elif stored != item:
                        repository.save(item)
                        changed += 1
            events.append(
                self.event(
                    "catalog_updated",
                    "catalog",
                    "catalog",
                    actor,
                    changed=changed,
                    products=len(catalog.products),
                    bundles=len(catalog.bundles),
                )
            )
            return attrs.evolve(catalog, version=current + 1)

        return self.run(work)

    def tax_source(
        self, *, sku: str, category_path: tuple[str, ...], region: str, on: date
    ) -> tuple[TaxRate, ...]:
        """The tax rates the desk's plugins give for ``sku`` in ``region`` on ``on`` (the
        ``salesflow_get_tax_rates`` hook, every answer in plugin order). Pass it to
        :meth:`Quote.add_line <salesflow.domain.quotes.Quote.add_line>` as ``tax_source`` for a
        quote with a ``region``: the desk refuses lines whose rates differ from it."""
        answers = self.plugins.hook.salesflow_get_tax_rates(
            sku=sku, category_path=tuple(category_path), region=region, on=on
        )
        rates: list[TaxRate] = []
        for answer in reversed(answers):  # pluggy answers last-registered first
            for i, rate in enumerate(answer or ()):
                if not isinstance(rate, TaxRate):
                    raise InvalidTypeError(f"salesflow_get_tax_rates[{i}]", rate, "a TaxRate")
                rates.append(rate)
        return tuple(rates)

    # -- quotes ---------------------------------------------------------------------------------------

    def create_quote(self, actor: Actor, quote: Quote) -> CommandResult[Quote]:
        """Store a new quote: a draft whose lines carry the stored catalog's prices on its date (a
        negotiated price is a line's ``unit_price`` override). It is stored at version 1, however
        many local edits built it. Its team is its opportunity's; the actor must be allowed to
        create it there."""
        if not isinstance(quote, Quote):
            raise InvalidTypeError("quote", quote, "a Quote")
        self.refuse_lifecycle(quote, "quote", **_DRAFT)

        def work(uow: UnitOfWork, events: list[Event]) -> Quote:
            placed = attrs.evolve(self._placed(uow, quote), version=1)
            self.authorize(actor, "quote.create", placed)
            placed.check_prices(self._catalog(uow), tax_source=self.tax_source)
            stored: Quote = uow.quotes.add(placed)
            events.append(self.event("quote_created", "quote", quote.id, actor, version=1))
            return stored

        return self.run(work)

    def _placed(self, uow: UnitOfWork, quote: Quote) -> Quote:
        """``quote`` with its opportunity's team (the opportunity must exist)."""
        if quote.opportunity_id is None:
            return quote
        opportunity = uow.opportunities.get(quote.opportunity_id)
        if quote.team is not None and quote.team != opportunity.team:
            raise ValidationError(
                "team",
                quote.team,
                f"{opportunity.team!r}, the team of opportunity {opportunity.id!r}",
                where=f"quote {quote.id!r}",
            )
        return attrs.evolve(quote, team=opportunity.team)

    def update_quote(self, actor: Actor, quote: Quote) -> CommandResult[Quote]:
        """Store an edited quote: ``quote`` must be the stored one changed by the quote's own
        methods (``add_line``, ``set_discount``...), which make it the next version and a draft. A
        pending approval of the old content is withdrawn; a contracted or accepted quote cannot
        change."""
        if not isinstance(quote, Quote):
            raise InvalidTypeError("quote", quote, "a Quote")

        def work(uow: UnitOfWork, events: list[Event]) -> Quote:
            stored: Quote = uow.quotes.get(quote.id)
            placed = self._placed(uow, quote)
            self.authorize(actor, "quote.update", stored, after=placed)
            if quote.version != stored.version + 1:
                raise ConcurrencyError("quote", quote.id, quote.version - 1, stored.version)
            stored.check_editable()
            self.refuse_lifecycle(quote, "quote", **_DRAFT)
            placed.check_prices(self._catalog(uow), tax_source=self.tax_source)
            if stored.state is QuoteState.PENDING_APPROVAL:
                self.withdraw_pending(uow, events, actor, "quote", quote.id, "the quote changed")
            saved: Quote = uow.quotes.save(placed)
            events.append(
                self.event(
                    "quote_updated",
                    "quote",
                    quote.id,
                    actor,
                    version=quote.version,
                    state=quote.state.value,
                )
            )
            return saved

        return self.run(work)

    def submit_quote(
        self, actor: Actor, quote_id: str, *, version: int | None = None
    ) -> CommandResult[Quote]:
        """Submit a draft (or rejected) quote under the discount policy.

        The quote is judged against its **owner's** authority whoever submits it (when someone
        else submits, the owner counts as holding the policy's first role): within it, it is
        approved at once; beyond it, it waits for the lowest role whose limits cover it (see
        :meth:`waiting_for`); a forbidden quote raises
        :class:`~salesflow.errors.ForbiddenDiscountError` and nothing changes. Its lines must
        still carry the stored catalog's prices. With ``version`` the quote must still be the
        version the actor saw. The quote records the version of the rules whose policy judged it
        (:attr:`Quote.rules_version <salesflow.domain.quotes.Quote.rules_version>`).
        """

        def work(uow: UnitOfWork, events: list[Event]) -> Quote:
            stored: Quote = uow.quotes.get(quote_id)
            self.authorize(actor, "quote.submit", stored)
            if version is not None and version != stored.version:
                raise ConcurrencyError("quote", quote_id, version, stored.version)
            stored.check_prices(self._catalog(uow), tax_source=self.tax_source)
            rules_version = self.rules_version_for(uow, "discount_policy")
            routing = route_quote(stored, self._authority(actor, stored), self.discount_policy)
            judged = attrs.evolve(routing.quote, rules_version=rules_version)
            uow.quotes.save(judged)
            data = {**_verdict_data(routing.verdict), "rules_version": rules_version}
            if routing.decision is RouteDecision.APPROVED:
                events.append(
                    self.event(
                        "quote_approved", "quote", quote_id, actor, within_authority=True, **data
                    )
                )
            else:
                assert routing.required_role is not None
                events.append(self.event("quote_submitted", "quote", quote_id, actor, **data))
                workflow = Workflow.one_step(routing.required_role)
                self.open_review(uow, events, actor, judged, "quote", workflow)
            return judged

        return self.run(work)

    def _authority(self, actor: Actor, quote: Quote) -> Actor:
        """Whose discount authority judges ``quote``: its owner's. The desk knows the roles of the
        acting actor only, so an owner who is not the submitter (or who holds no role of the
        policy's ladder) counts as holding the ladder's first role."""
        ladder = [rung.role for rung in self.discount_policy.ladder]
        if actor.id == quote.owner and any(actor.has_role(role) for role in ladder):
            return actor
        return Actor(quote.owner, roles={ladder[0]})

    def accept_quote(
        self, actor: Actor, quote_id: str, *, version: int | None = None
    ) -> CommandResult[Quote]:
        """Record that the customer accepted an approved quote."""

        def work(uow: UnitOfWork, events: list[Event]) -> Quote:
            stored: Quote = uow.quotes.get(quote_id)
            self.authorize(actor, "quote.accept", stored)
            if version is not None and version != stored.version:
                raise ConcurrencyError("quote", quote_id, version, stored.version)
            accepted = stored.accept()
            uow.quotes.save(accepted)
            events.append(
                self.event(
                    "quote_accepted", "quote", quote_id, actor, total=str(accepted.total.amount)
                )
            )
            return accepted

        return self.run(work)

    def quote(self, quote_id: str, *, actor: Actor | None = None) -> Quote:
        """The stored quote ``quote_id`` (for ``actor``, if given: refused when they may not
        read it)."""
        with self.storage.transaction() as uow:
            found: Quote = uow.quotes.get(quote_id)
        return self.readable(actor, "quote", found)

    def quotes(self, *, actor: Actor | None = None, **filters: Any) -> list[Quote]:
        """Stored quotes matching ``filters`` (``owner``, ``opportunity_id``, ``state``); with
        ``actor``, only those the actor may read."""
        with self.storage.transaction() as uow:
            return list(self.visible(actor, "quote", uow.quotes.query(**filters)))

    def check_quote(self, actor: Actor, quote: Quote) -> DiscountVerdict:
        """What the discount policy says of ``quote`` for ``actor``, without submitting it."""
        if not isinstance(quote, Quote):
            raise InvalidTypeError("quote", quote, "a Quote")
        if not isinstance(actor, Actor):
            raise InvalidTypeError("actor", actor, "an Actor")
        return self.discount_policy.evaluate(quote, actor)


def _catalog_version(uow: UnitOfWork) -> int:
    """The stored catalog's version: how many updates it had (the event log is append-only and
    written in the same transaction as each update)."""
    return sum(1 for _ in uow.events.query(subject_kind="catalog", name="catalog_updated"))


def _verdict_data(verdict: DiscountVerdict) -> dict[str, Any]:
    """The discount verdict in an event: the role it needs and why, as text."""
    if not isinstance(verdict, DiscountVerdict):
        raise ValidationError("verdict", verdict, "a DiscountVerdict")
    return {
        "required_role": verdict.required_role,
        "reasons": [reason.message for reason in verdict.reasons],
    }
