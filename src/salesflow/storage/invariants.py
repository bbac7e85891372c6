"""The port's invariants: the rules every backend enforces on every write, whoever writes.

The desk keeps these rules when it changes a record through its commands, but a caller with a unit
of work (``desk.storage.transaction()``) could otherwise write anything. So the storage itself
refuses, in every backend, through these functions (:class:`~salesflow.storage.BaseStorage` calls
them for its subclasses; the SQL backend calls them from its own write paths):

* a new opportunity is stored at version 0 (:func:`check_new`); its stage history only grows
  (:func:`check_history`);
* a record's time only moves forward (:func:`check_forward`);
* a signed contract (formal, terminated or expired) is never saved changed, except by its
  lifecycle moves formal -> terminated / expired, which keep its content
  (:func:`check_contract_save`, :class:`~salesflow.errors.ContractLockedError`);
* a contract is added as a draft (:func:`check_contract_add`), and a signed one is never deleted
  (:func:`check_contract_delete`);
* an approval request is never deleted (:func:`check_approval_delete`); it is saved only as its
  stored self plus audit entries appended to it, and its
  state must be exactly what its audit replays to (:func:`check_approval_save`); a new one must
  replay from its own audit (:func:`check_approval_add`). Both raise
  :class:`~salesflow.errors.ValidationError` on field ``"audit"``.
* a version of the sales rules is added stamped, at version 1 or more (:func:`check_rules_add`),
  and never changed (:func:`check_rules_save`) or deleted (:func:`check_rules_delete`): the
  history of the rules only grows. Both raise :class:`~salesflow.errors.ValidationError` on
  field ``"version"``.

Each document kind names the rules of its aggregate (:attr:`DocumentKind.add_rule
<salesflow.storage.kinds.DocumentKind.add_rule>`, :attr:`~salesflow.storage.kinds.DocumentKind.save_rule`),
so a backend calls ``kind.save_rule(stored, new)`` without knowing the kinds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from salesflow.errors import ContractLockedError, ValidationError

__all__ = [
    "check_approval_add",
    "check_approval_delete",
    "check_approval_save",
    "check_contract_add",
    "check_contract_delete",
    "check_contract_save",
    "check_forward",
    "check_history",
    "check_new",
    "check_rules_add",
    "check_rules_delete",
    "check_rules_save",
]


def check_new(kind: str, aggregate: Any) -> None:
    """Refuse to add an aggregate that claims to be stored already (a ``version`` other than 0).

    Raises:
        ValidationError: on field ``"version"``.
    """
    if aggregate.version != 0:
        raise ValidationError(
            "version", aggregate.version, f"0 for a new {kind} (use save() to change a stored one)"
        )


def check_history(stored: Any, new: Any) -> None:
    """Refuse a save that rewrites an opportunity's stored stage history: it may only grow.

    Raises:
        ValidationError: on field ``"history"``.
    """
    kept = new.history[: len(stored.history)]
    if len(new.history) < len(stored.history) or kept != stored.history:
        raise ValidationError(
            "history",
            len(new.history),
            f"the stored {len(stored.history)} stage changes of {new.id!r}, unchanged, plus new ones",
        )


def check_forward(record: str, field: str, now: datetime, last: datetime | None) -> None:
    """Refuse a write stamped ``now`` on ``record`` (``"opportunity 'op-1'"``) if ``now`` is before
    ``last``, the latest time stored for that record: its ``updated_at`` and its events never go
    back (see :mod:`salesflow.ports`).

    Raises:
        ValidationError: on ``field`` (``"clock"`` for ``updated_at``, ``"at"`` for an event).
    """
    if last is not None and now < last:
        raise ValidationError(
            field,
            now,
            f"a time at or after {last.isoformat()}, the latest time stored for {record}: the "
            f"clock reads {now.isoformat()}, behind the record, so nothing was changed (a "
            "record's time only moves forward; set the clock right and try again)",
            where=record,
        )


def _changed(stored: Any, new: Any, allowed: frozenset[str]) -> list[str]:
    return [
        field.name
        for field in attrs.fields(type(stored))
        if field.name not in allowed and getattr(stored, field.name) != getattr(new, field.name)
    ]


_ENDING = frozenset({"state", "ended_on", "end_reason", "version"})
"""What a formal contract's lifecycle moves (terminate, expire) change."""


def check_contract_save(stored: Any, new: Any) -> None:
    """Refuse to save a signed contract changed.

    A contract that is formal, terminated or expired is frozen: it may be saved unchanged, or (from
    formal) terminated or expired, which sets its state, end date and reason (and may raise its
    version) and keeps everything else: the same content (:meth:`Contract.content_hash
    <salesflow.domain.contracts.Contract.content_hash>`), signing date, amount and team. A draft or
    a contract in review is not checked here (the desk's commands keep their rules).

    Raises:
        ContractLockedError: naming the contract, its stored state and the fields that changed.
    """
    from salesflow.domain.contracts import SIGNED_STATES, ContractState

    if stored.state not in SIGNED_STATES or new == stored:
        return
    ending = stored.state is ContractState.FORMAL and new.state in (
        ContractState.TERMINATED,
        ContractState.EXPIRED,
    )
    if ending:
        changed = _changed(stored, new, _ENDING)
        if new.version < stored.version:
            changed.append("version")
        if new.content_hash() != stored.content_hash() and "content" not in changed:
            changed.append("content")
    else:
        changed = _changed(stored, new, frozenset())
    if not changed:
        return
    raise ContractLockedError(stored.id, stored.state.value, f"change its {', '.join(changed)}")


def check_contract_add(new: Any) -> None:
    """Refuse to add a contract in any state but draft: a contract turns formal only through its
    approval, as a change of a stored draft.

    Raises:
        ValidationError: on field ``"state"``.
    """
    from salesflow.domain.contracts import ContractState

    if new.state is not ContractState.DRAFT:
        raise ValidationError(
            "state",
            new.state.value,
            "draft: a contract is stored as a draft and turns formal only through its approval",
            where=f"contract {new.id!r}",
        )


def check_contract_delete(stored: Any) -> None:
    """Refuse to delete a signed contract (formal, terminated or expired): it is the record of a
    signing.

    Raises:
        ContractLockedError: naming the contract and its state.
    """
    from salesflow.domain.contracts import SIGNED_STATES

    if stored.state in SIGNED_STATES:
        raise ContractLockedError(stored.id, stored.state.value, "delete it")


def check_approval_delete(stored: Any) -> None:
    """Refuse to delete an approval request: its audit is kept forever.

    Raises:
        ValidationError: on field ``"audit"``.
    """
    raise ValidationError(
        "audit",
        len(stored.audit),
        "kept forever: an approval request and its audit are never deleted",
        where=f"approval request {stored.id!r}",
    )


def _check_replays(request: Any, what: str) -> None:
    try:
        replayed = request.replayed()
    except ValidationError as error:
        raise ValidationError(
            "audit",
            len(request.audit),
            message=(
                f"approval request {request.id!r}: {what} has an audit that does not replay "
                f"({error}); nothing was changed"
            ),
        ) from None
    if replayed != request:
        differ = _changed(replayed, request, frozenset())
        raise ValidationError(
            "audit",
            len(request.audit),
            message=(
                f"approval request {request.id!r}: {what} is not what its audit replays to "
                f"({', '.join(differ)} differ); only the engine's actions change a request, "
                "each recorded in its audit, so nothing was changed"
            ),
        )


def check_approval_add(request: Any) -> None:
    """Refuse to add an approval request whose state is not what its own audit replays to
    (:meth:`ApprovalRequest.replayed <salesflow.domain.approvals.ApprovalRequest.replayed>`).

    Raises:
        ValidationError: on field ``"audit"``.
    """
    _check_replays(request, "the new request")


_IDENTITY = ("id", "subject_id", "subject_kind", "workflow")


def check_approval_save(stored: Any, new: Any) -> None:
    """Refuse to save an approval request other than as its stored self plus appended audit
    entries that replay to the saved state: the audit only grows, nothing is edited or deleted in
    it, and no field (decisions, state, step...) changes without an audit entry that says so.

    Raises:
        ValidationError: on the identity field that changed (``"workflow"``, ``"subject_id"``...),
            or on ``"audit"``.
    """
    for name in _IDENTITY:
        if getattr(stored, name) != getattr(new, name):
            raise ValidationError(
                name,
                getattr(new, name),
                f"the stored {name} of approval request {stored.id!r}: it never changes",
            )
    kept = len(stored.audit)
    if len(new.audit) < kept or new.audit[:kept] != stored.audit:
        raise ValidationError(
            "audit",
            len(new.audit),
            f"the stored {kept} audit entries of approval request {stored.id!r}, unchanged, plus "
            "new ones (the audit only grows)",
        )
    _check_replays(new, "the saved request")


def check_rules_add(rules: Any) -> None:
    """Refuse to add a version of the rules that is not stamped: version 0 is the built-in
    defaults and is never stored; a stored version names who changed the rules and when.

    Raises:
        ValidationError: on field ``"version"``.
    """
    if rules.version < 1 or rules.changed_by is None or rules.effective_at is None:
        raise ValidationError(
            "version",
            rules.version,
            "a version of 1 or more, stamped with who changed the rules and when (version 0, the "
            "built-in defaults, is never stored)",
            where="rules",
        )


def check_rules_save(stored: Any, new: Any) -> None:
    """Refuse to save a stored version of the rules changed: a decision made under it must stay
    explainable by it, so a change is always a new version.

    Raises:
        ValidationError: on field ``"version"``.
    """
    if new != stored:
        raise ValidationError(
            "version",
            stored.version,
            f"unchanged: version {stored.version} of the rules is kept as it was stored; a change "
            "is a new version (desk.change_rules)",
            where="rules",
        )


def check_rules_delete(stored: Any) -> None:
    """Refuse to delete a version of the rules: the history of the rules only grows.

    Raises:
        ValidationError: on field ``"version"``.
    """
    raise ValidationError(
        "version",
        stored.version,
        "kept forever: a version of the rules is never deleted",
        where="rules",
    )
