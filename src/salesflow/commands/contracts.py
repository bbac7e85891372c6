"""SalesDesk commands and reads for contracts and collections (R11-R16).

A contract is made from an approved quote and goes through the desk's contract workflow (sales
manager -> project manager -> finance and legal by default). A rejection sends it back to its rep as a
draft with the reason; once every role approved it turns formal on that day and is frozen, and its
billing opens: progress on the quote's lines, a billing plan of milestones, invoices, credit notes
and payments, kept apart so that the frozen contract never changes. ``milestone_reached`` events
name the rep who should invoice; :meth:`ContractCommands.receivables` lists what is not invoiced or
not paid, oldest signing first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import attrs

from salesflow.analytics.performance import Attainment, Target, attainment
from salesflow.analytics.receivables import Receivables, receivables, signed_from_contracts
from salesflow.commands.approvals import REVIEWED, ApprovalCommands, Reviewed
from salesflow.commands.core import CommandResult, DeskCore
from salesflow.domain.actors import Actor
from salesflow.domain.billing import BillingResult, ContractBilling, MilestoneSpec
from salesflow.domain.contracts import Contract
from salesflow.domain.events import Event
from salesflow.domain.money import Money
from salesflow.domain.periods import Period
from salesflow.domain.quotes import Quote
from salesflow.errors import ConcurrencyError, ValidationError
from salesflow.ports import UnitOfWork

__all__ = ["ContractCommands"]


def _signed(
    desk: DeskCore, uow: UnitOfWork, events: list[Event], actor: Actor, contract: Any
) -> None:
    """A contract turned formal: its billing opens, and its opportunity is won on the signing
    date, so that the deal counts once (signed, no longer expected)."""
    uow.billings.add(ContractBilling.open(contract))
    if contract.opportunity_id is None:
        return
    opportunity = uow.opportunities.get(contract.opportunity_id)
    won = desk.plan.won_stage.key
    if opportunity.stage == won:
        return
    uow.opportunities.save(opportunity.move_to(won, desk.now(), plan=desk.plan))
    events.append(
        desk.event(
            "opportunity_won",
            "opportunity",
            opportunity.id,
            actor,
            contract=contract.id,
            amount=str(contract.amount.amount),
            currency=contract.currency,
            **{"from": opportunity.stage},
        )
    )


REVIEWED["contract"] = Reviewed(
    kind="contract",
    repository="contracts",
    content_hash=lambda contract: contract.content_hash(),
    approved=lambda contract, on: contract.make_formal(on),
    rejected=lambda contract, reason: contract.return_to_draft(reason),
    withdrawn=lambda contract: contract.withdraw(),
    approved_event="contract_formal",
    on_approved=_signed,
)


class ContractCommands(ApprovalCommands):
    """Contracts, their approval and their collections on the desk."""

    # -- the contract ---------------------------------------------------------------------------------

    def create_contract(
        self,
        actor: Actor,
        quote_id: str,
        *,
        id: str,
        terms: str = "",
        account: str | None = None,
        team: str | None = None,
    ) -> CommandResult[Contract]:
        """A draft contract holding a copy of the approved (or accepted) quote ``quote_id``; its
        amount is the exact sum of the quote's lines (R11, R13). The quote is locked
        (``contracted``) while the contract lives: one quote backs one contract.

        The contract's team is its opportunity's (``team`` may only repeat it; it names the team
        of a quote without an opportunity), its account the opportunity's unless given.
        """

        def work(uow: UnitOfWork, events: list[Event]) -> Contract:
            quote: Quote = uow.quotes.get(quote_id)
            placed_team, placed_account = quote.team, account
            if quote.opportunity_id is not None:
                opportunity = uow.opportunities.get(quote.opportunity_id)
                placed_team = opportunity.team
                placed_account = account if account is not None else opportunity.account
            if team is not None and placed_team is not None and team != placed_team:
                raise ValidationError(
                    "team", team, f"{placed_team!r}, the team of the quote's opportunity"
                )
            contract = Contract.from_quote(
                quote,
                id=id,
                terms=terms,
                account=placed_account,
                team=placed_team if placed_team is not None else team,
            )
            self.authorize(actor, "contract.create", quote, after=contract)
            uow.contracts.add(contract)
            uow.quotes.save(quote.lock_for(id))
            events.append(
                self.event(
                    "contract_created",
                    "contract",
                    id,
                    actor,
                    quote=quote_id,
                    amount=str(contract.amount.amount),
                    currency=contract.currency,
                )
            )
            return contract

        return self.run(work)

    def revise_contract(
        self,
        actor: Actor,
        contract_id: str,
        *,
        terms: str,
        version: int | None = None,
    ) -> CommandResult[Contract]:
        """Revise the terms of a draft contract. A contract in review is locked, a formal one
        frozen (:class:`~salesflow.errors.ContractLockedError`). Its quote is locked while the
        contract lives: to change the quote, cancel the contract (:meth:`cancel_contract`)."""

        def work(uow: UnitOfWork, events: list[Event]) -> Contract:
            contract = self._load(uow, actor, contract_id, "contract.revise", version)
            revised = contract.revise(terms=terms)
            uow.contracts.save(revised)
            events.append(
                self.event(
                    "contract_revised",
                    "contract",
                    contract_id,
                    actor,
                    version=revised.version,
                    amount=str(revised.amount.amount),
                )
            )
            return revised

        return self.run(work)

    def cancel_contract(
        self, actor: Actor, contract_id: str, *, reason: str, version: int | None = None
    ) -> CommandResult[Contract]:
        """Give up a draft contract before signing (withdraw its review first), with the reason;
        its quote is released (approved again) and may be changed or contracted anew."""

        def work(uow: UnitOfWork, events: list[Event]) -> Contract:
            contract = self._load(uow, actor, contract_id, "contract.cancel", version)
            cancelled = contract.cancel(self.today(), reason)
            uow.contracts.save(cancelled)
            events.append(
                self.event("contract_cancelled", "contract", contract_id, actor, reason=reason)
            )
            self._release(uow, events, actor, contract)
            return cancelled

        return self.run(work)

    def _release(
        self, uow: UnitOfWork, events: list[Event], actor: Actor, contract: Contract
    ) -> None:
        quote: Quote = uow.quotes.get(contract.quote.id)
        if quote.contract_id != contract.id:
            return
        uow.quotes.save(quote.release())
        events.append(self.event("quote_released", "quote", quote.id, actor, contract=contract.id))

    def _load(
        self,
        uow: UnitOfWork,
        actor: Actor,
        contract_id: str,
        action: str,
        version: int | None = None,
    ) -> Contract:
        contract: Contract = uow.contracts.get(contract_id)
        self.authorize(actor, action, contract)
        if version is not None and version != contract.version:
            raise ConcurrencyError("contract", contract_id, version, contract.version)
        return contract

    def submit_contract(
        self,
        actor: Actor,
        contract_id: str,
        *,
        version: int | None = None,
        comment: str | None = None,
    ) -> CommandResult[Contract]:
        """Send a draft contract for review through the contract workflow; it is locked while in
        review. A resubmission after a rejection starts again at the first step. The contract
        records the version of the rules whose workflow reviews it
        (:attr:`Contract.rules_version <salesflow.domain.contracts.Contract.rules_version>`)."""

        def work(uow: UnitOfWork, events: list[Event]) -> Contract:
            contract = self._load(uow, actor, contract_id, "contract.submit", version)
            rules_version = self.rules_version_for(uow, "contract_workflow")
            submitted = attrs.evolve(contract.submit(), rules_version=rules_version)
            uow.contracts.save(submitted)
            events.append(
                self.event(
                    "contract_submitted",
                    "contract",
                    contract_id,
                    actor,
                    version=contract.version,
                    rules_version=rules_version,
                )
            )
            self.open_review(
                uow, events, actor, submitted, "contract", self.contract_workflow, comment=comment
            )
            return submitted

        return self.run(work)

    def terminate_contract(
        self,
        actor: Actor,
        contract_id: str,
        *,
        reason: str,
        on: date | None = None,
        version: int | None = None,
    ) -> CommandResult[Contract]:
        """End a formal contract early (its amount and lines stay as signed, and it still counts
        as signed); its quote is released."""

        def work(uow: UnitOfWork, events: list[Event]) -> Contract:
            contract = self._load(uow, actor, contract_id, "contract.terminate", version)
            ended = contract.terminate(self.today() if on is None else on, reason)
            uow.contracts.save(ended)
            events.append(
                self.event("contract_terminated", "contract", contract_id, actor, reason=reason)
            )
            self._release(uow, events, actor, contract)
            return ended

        return self.run(work)

    def contract(self, contract_id: str, *, actor: Actor | None = None) -> Contract:
        """The stored contract ``contract_id`` (for ``actor``, if given: refused when they may not
        read it)."""
        with self.storage.transaction() as uow:
            found: Contract = uow.contracts.get(contract_id)
        return self.readable(actor, "contract", found)

    def contracts(self, *, actor: Actor | None = None, **filters: Any) -> list[Contract]:
        """Stored contracts matching ``filters`` (``owner``, ``team``, ``state``, ``signed_on``,
        ``account``, ``opportunity_id``); with ``actor``, only those the actor may read."""
        with self.storage.transaction() as uow:
            return list(self.visible(actor, "contract", uow.contracts.query(**filters)))

    # -- execution and collections (R14, R16) ------------------------------------------------------

    def _billing_command(
        self,
        actor: Actor,
        contract_id: str,
        action: str,
        change: Any,
        version: int | None,
    ) -> CommandResult[ContractBilling]:
        """Load the billing of ``contract_id``, authorize ``action`` on its contract, apply
        ``change(billing) -> ContractBilling | BillingResult`` and store the result. With
        ``version`` the billing must still be the version the actor saw."""

        def work(uow: UnitOfWork, events: list[Event]) -> ContractBilling:
            contract: Contract = uow.contracts.get(contract_id)
            self.authorize(actor, action, contract)
            billing: ContractBilling = uow.billings.get(contract_id)
            if version is not None and version != billing.version:
                raise ConcurrencyError("billing", contract_id, version, billing.version)
            result = change(billing)
            if isinstance(result, BillingResult):
                new, reached = result.billing, result.events
            else:
                new, reached = result, ()
            uow.billings.save(new)
            events.append(self.event(action.replace(".", "_"), "contract", contract_id, actor))
            events.extend(item.to_event() for item in reached)
            return new

        return self.run(work)

    def attach_billing_plan(
        self,
        actor: Actor,
        contract_id: str,
        milestones: Iterable[MilestoneSpec],
        *,
        version: int | None = None,
    ) -> CommandResult[ContractBilling]:
        """Attach (or replace, until one is invoiced) the milestones the contract amount is billed
        by; their amounts allocate the contract amount exactly. Triggers already met fire at once."""
        specs = tuple(milestones)
        return self._billing_command(
            actor,
            contract_id,
            "billing.plan",
            lambda billing: billing.attach_plan(specs, at=self.now()),
            version,
        )

    def record_progress(
        self,
        actor: Actor,
        contract_id: str,
        line_id: str,
        percent: Decimal | int | str | None = None,
        *,
        delivered: Decimal | int | str | None = None,
        version: int | None = None,
    ) -> CommandResult[ContractBilling]:
        """Record execution progress on a quote line (never downwards; see
        :meth:`correct_progress`). A milestone whose trigger this meets emits ``milestone_reached``
        naming the rep."""
        return self._billing_command(
            actor,
            contract_id,
            "billing.progress",
            lambda billing: billing.record_progress(
                line_id, percent, at=self.now(), delivered=delivered
            ),
            version,
        )

    def correct_progress(
        self,
        actor: Actor,
        contract_id: str,
        line_id: str,
        percent: Decimal | int | str,
        *,
        reason: str,
        version: int | None = None,
    ) -> CommandResult[ContractBilling]:
        """Correct a line's progress (downwards too), with the reason, kept in the billing's audit."""
        return self._billing_command(
            actor,
            contract_id,
            "billing.correct",
            lambda billing: billing.correct_progress(
                line_id, percent, at=self.now(), by=actor.id, reason=reason
            ),
            version,
        )

    def issue_invoice(
        self,
        actor: Actor,
        contract_id: str,
        invoice_id: str,
        *,
        due_on: date,
        milestone: str | None = None,
        amount: Money | Decimal | int | str | None = None,
        issued_on: date | None = None,
        version: int | None = None,
    ) -> CommandResult[ContractBilling]:
        """Invoice a milestone (by default what is left of it) or a free amount; the invoices never
        add up to more than the contract amount."""
        return self._billing_command(
            actor,
            contract_id,
            "billing.invoice",
            lambda billing: billing.issue_invoice(
                invoice_id,
                issued_on=self.today() if issued_on is None else issued_on,
                due_on=due_on,
                amount=amount,
                milestone=milestone,
            ),
            version,
        )

    def issue_credit_note(
        self,
        actor: Actor,
        contract_id: str,
        note_id: str,
        invoice_id: str,
        amount: Money | Decimal | int | str,
        *,
        reason: str,
        issued_on: date | None = None,
        version: int | None = None,
    ) -> CommandResult[ContractBilling]:
        """Credit part of an invoice that is not paid yet (a correction), with the reason."""
        return self._billing_command(
            actor,
            contract_id,
            "billing.credit",
            lambda billing: billing.issue_credit_note(
                note_id,
                invoice_id,
                amount,
                issued_on=self.today() if issued_on is None else issued_on,
                reason=reason,
            ),
            version,
        )

    def record_payment(
        self,
        actor: Actor,
        contract_id: str,
        payment_id: str,
        invoice_id: str,
        amount: Money | Decimal | int | str,
        *,
        received_on: date | None = None,
        version: int | None = None,
    ) -> CommandResult[ContractBilling]:
        """Record money received against an invoice (partial payments allowed, never more than is
        open on the invoice)."""
        return self._billing_command(
            actor,
            contract_id,
            "billing.payment",
            lambda billing: billing.record_payment(
                payment_id,
                invoice_id,
                amount,
                received_on=self.today() if received_on is None else received_on,
            ),
            version,
        )

    def billing(self, contract_id: str, *, actor: Actor | None = None) -> ContractBilling:
        """The billing (progress, plan, invoices, payments) of the formal contract ``contract_id``
        (for ``actor``, if given: refused when they may not read the contract)."""
        with self.storage.transaction() as uow:
            self.readable(actor, "contract", uow.contracts.get(contract_id))
            found: ContractBilling = uow.billings.get(contract_id)
            return found

    def receivables(
        self,
        *,
        as_of: date | None = None,
        not_invoiced: bool = False,
        not_paid: bool = False,
        actor: Actor | None = None,
        **filters: Any,
    ) -> Receivables:
        """The collections list (R16) as of ``as_of`` (today by default): signed contracts matching
        ``filters`` (and readable by ``actor``, if given) with what is not invoiced and not paid,
        oldest signing first."""
        with self.storage.transaction() as uow:
            contracts = self.visible(actor, "contract", uow.contracts.query(**filters))
            signed = [c for c in contracts if c.is_signed]
            billings: Mapping[str, ContractBilling] = {
                b.contract_id: b
                for b in uow.billings.query()
                if b.contract_id in {c.id for c in signed}
            }
        return receivables(
            signed,
            billings,
            as_of=self.today() if as_of is None else as_of,
            not_invoiced=not_invoiced,
            not_paid=not_paid,
            currency=self.currency,
        )

    def attainment(
        self,
        targets: Iterable[Target],
        *,
        period: Period | str,
        teams: Mapping[str, Iterable[str]] | None = None,
        as_of: date | None = None,
        actor: Actor | None = None,
    ) -> Attainment:
        """Target, signed (formal contracts, by signing date), gap and expected (the stored
        forecast of open opportunities) per rep and team for ``period`` (R15). A signed contract
        has won its opportunity, so a deal counts once. With ``actor``, only the contracts and
        opportunities the actor may read count. ``targets`` are taken as
        :func:`~salesflow.analytics.performance.attainment` takes them: a team's may be a stretch
        or a cushion, and a quarter's or a year's is pro-rated to a shorter ``period``."""
        day = self.today() if as_of is None else as_of
        with self.storage.transaction() as uow:
            contracts = self.visible(actor, "contract", uow.contracts.query())
            signed = list(signed_from_contracts(contracts))
            expected = self.stored_forecast(
                uow, actor, as_of=day, by="owner", currency=self.currency
            )
        return attainment(
            targets, signed, expected, period=period, teams=teams, currency=self.currency
        )
