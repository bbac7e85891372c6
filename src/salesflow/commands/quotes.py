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
from typing import Any

from salesflow.commands.approvals import ApprovalCommands
from salesflow.commands.core import CommandResult
from salesflow.domain.actors import Actor
from salesflow.domain.approvals import Workflow
from salesflow.domain.catalog import Catalog
from salesflow.domain.discounts import DiscountVerdict, RouteDecision, route_quote
from salesflow.domain.events import Event
from salesflow.domain.quotes import Quote
from salesflow.errors import ConcurrencyError, InvalidTypeError, ValidationError
from salesflow.ports import UnitOfWork

__all__ = ["QuoteCommands"]


class QuoteCommands(ApprovalCommands):
    """The catalog and quotes on the desk."""

    # -- the catalog ----------------------------------------------------------------------------------

    def catalog(self) -> Catalog:
        """The stored catalog: every category, product and bundle."""
        with self.storage.transaction() as uow:
            return self._catalog(uow)

    def _catalog(self, uow: UnitOfWork) -> Catalog:
        return Catalog(
            categories=tuple(uow.categories.query()),
            products=tuple(uow.products.query()),
            bundles=tuple(uow.bundles.query()),
        )

    def update_catalog(self, actor: Actor, catalog: Catalog) -> CommandResult[Catalog]:
        """Replace the stored catalog with ``catalog`` (validated as a whole first): new items are
        added, changed ones saved, missing ones removed. Quotes already made keep their prices."""
        if not isinstance(catalog, Catalog):
            raise InvalidTypeError("catalog", catalog, "a Catalog")
        self.authorize(actor, "catalog.update", catalog)

        def work(uow: UnitOfWork, events: list[Event]) -> Catalog:
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
            return catalog

        return self.run(work)

    # -- quotes ---------------------------------------------------------------------------------------

    def create_quote(self, actor: Actor, quote: Quote) -> CommandResult[Quote]:
        """Store a new quote (a draft; its lines must come from the stored catalog)."""
        if not isinstance(quote, Quote):
            raise InvalidTypeError("quote", quote, "a Quote")
        self.authorize(actor, "quote.create", quote)

        def work(uow: UnitOfWork, events: list[Event]) -> Quote:
            self._check_products(uow, quote)
            if quote.opportunity_id is not None:
                uow.opportunities.get(quote.opportunity_id)
            stored: Quote = uow.quotes.add(quote)
            events.append(
                self.event("quote_created", "quote", quote.id, actor, version=quote.version)
            )
            return stored

        return self.run(work)

    def _check_products(self, uow: UnitOfWork, quote: Quote) -> None:
        catalog = self._catalog(uow)
        for item in quote.items:
            catalog.sellable(item.sku, on=quote.quoted_on)  # an unknown or inactive item raises

    def update_quote(self, actor: Actor, quote: Quote) -> CommandResult[Quote]:
        """Store an edited quote: ``quote`` must be the stored one changed by the quote's own
        methods (``add_line``, ``set_discount``...), which make it the next version and send a
        submitted or approved quote back to draft."""
        if not isinstance(quote, Quote):
            raise InvalidTypeError("quote", quote, "a Quote")

        def work(uow: UnitOfWork, events: list[Event]) -> Quote:
            stored: Quote = uow.quotes.get(quote.id)
            self.authorize(actor, "quote.update", stored)
            if quote.owner != stored.owner:
                self.authorize(actor, "quote.update", quote)
            if quote.version != stored.version + 1:
                raise ConcurrencyError("quote", quote.id, quote.version - 1, stored.version)
            self._check_products(uow, quote)
            saved: Quote = uow.quotes.save(quote)
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

        Within the actor's authority it is approved at once; beyond it, it waits for the lowest
        role whose limits cover it (see :meth:`waiting_for`); a forbidden quote raises
        :class:`~salesflow.errors.ForbiddenDiscountError` and nothing changes. With ``version`` the
        quote must still be the version the actor saw.
        """

        def work(uow: UnitOfWork, events: list[Event]) -> Quote:
            stored: Quote = uow.quotes.get(quote_id)
            self.authorize(actor, "quote.submit", stored)
            if version is not None and version != stored.version:
                raise ConcurrencyError("quote", quote_id, version, stored.version)
            routing = route_quote(stored, actor, self.discount_policy)
            uow.quotes.save(routing.quote)
            data = _verdict_data(routing.verdict)
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
                self.open_review(uow, events, actor, routing.quote, "quote", workflow)
            return routing.quote

        return self.run(work)

    def accept_quote(self, actor: Actor, quote_id: str) -> CommandResult[Quote]:
        """Record that the customer accepted an approved quote."""

        def work(uow: UnitOfWork, events: list[Event]) -> Quote:
            stored: Quote = uow.quotes.get(quote_id)
            self.authorize(actor, "quote.accept", stored)
            accepted = stored.accept()
            uow.quotes.save(accepted)
            events.append(
                self.event(
                    "quote_accepted", "quote", quote_id, actor, total=str(accepted.total.amount)
                )
            )
            return accepted

        return self.run(work)

    def quote(self, quote_id: str) -> Quote:
        """The stored quote ``quote_id``."""
        with self.storage.transaction() as uow:
            found: Quote = uow.quotes.get(quote_id)
            return found

    def quotes(self, **filters: Any) -> list[Quote]:
        """Stored quotes matching ``filters`` (``owner``, ``opportunity_id``, ``state``)."""
        with self.storage.transaction() as uow:
            return list(uow.quotes.query(**filters))

    def check_quote(self, actor: Actor, quote: Quote) -> DiscountVerdict:
        """What the discount policy says of ``quote`` for ``actor``, without submitting it."""
        if not isinstance(quote, Quote):
            raise InvalidTypeError("quote", quote, "a Quote")
        if not isinstance(actor, Actor):
            raise InvalidTypeError("actor", actor, "an Actor")
        return self.discount_policy.evaluate(quote, actor)


def _verdict_data(verdict: DiscountVerdict) -> dict[str, Any]:
    """The discount verdict in an event: the role it needs and why, as text."""
    if not isinstance(verdict, DiscountVerdict):
        raise ValidationError("verdict", verdict, "a DiscountVerdict")
    return {
        "required_role": verdict.required_role,
        "reasons": [reason.message for reason in verdict.reasons],
    }
