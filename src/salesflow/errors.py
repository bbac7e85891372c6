"""The salesflow exception hierarchy.

Every error salesflow raises on purpose is a :class:`SalesflowError`. Errors carry their context as
attributes (the field, the value, what was expected, the actor, the subject...) and a message a person
can act on. Where Python has a natural built-in base (``ValueError``, ``LookupError``,
``PermissionError``, ``TypeError``) the salesflow class also derives from it, so code written against
the built-in keeps working.

::

    SalesflowError
    ├── ValidationError (ValueError)
    │   ├── InvalidTypeError (TypeError)
    │   ├── ForbiddenDiscountError
    │   ├── CurrencyMismatchError
    │   └── StageError
    ├── ApprovalError
    │   ├── NotAuthorizedError (PermissionError)
    │   └── TransitionNotAllowedError
    ├── ContractLockedError
    ├── ConcurrencyError
    ├── NotFoundError (LookupError)
    ├── StorageError
    │   └── SchemaVersionError
    ├── PluginError
    │   └── BackendNotFoundError (LookupError)
    └── MissingDependencyError (ImportError)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApprovalError",
    "BackendNotFoundError",
    "ConcurrencyError",
    "ContractLockedError",
    "CurrencyMismatchError",
    "ForbiddenDiscountError",
    "InvalidTypeError",
    "MissingDependencyError",
    "NotAuthorizedError",
    "NotFoundError",
    "PluginError",
    "SalesflowError",
    "SchemaVersionError",
    "StageError",
    "StorageError",
    "TransitionNotAllowedError",
    "ValidationError",
]

_UNSET: Any = object()


class SalesflowError(Exception):
    """Root of every error salesflow raises on purpose."""


class ValidationError(SalesflowError, ValueError):
    """Bad input: a value that is not what the field expects.

    Attributes:
        field: the name of the offending field (``"amount"``, ``"stages[2].probability"``).
        value: the value that was refused (``None`` when the problem is a missing value).
        expected: what would have been accepted, in words.
        where: where the value came from, when known (``"line 17"``, ``"opportunity 'op-3'"``).
    """

    def __init__(
        self,
        field: str,
        value: Any = _UNSET,
        expected: str = "",
        *,
        where: str | None = None,
        message: str | None = None,
    ) -> None:
        self.field = field
        self.value = None if value is _UNSET else value
        self.expected = expected
        self.where = where
        if message is None:
            shown = "missing" if value is _UNSET else f"{value!r}"
            message = f"invalid {field}: {shown}"
            if expected:
                message += f" (expected {expected})"
        if where:
            message = f"{where}: {message}"
        super().__init__(message)

    def located(self, where: str) -> ValidationError:
        """Return a copy of this error that also says where the value came from (a CSV line, a row)."""
        # Built with __new__ because subclasses have constructors of their own.
        err = type(self).__new__(type(self))
        err.__dict__.update(self.__dict__)
        err.where = f"{where}: {self.where}" if self.where else where
        err.args = (f"{where}: {self.args[0]}",)
        return err


class ForbiddenDiscountError(ValidationError):
    """A quote no role may approve (below a floor, or beyond the top role): it cannot be submitted.

    Attributes:
        quote: the quote id.
        verdict: the :class:`~salesflow.domain.discounts.DiscountVerdict`.
        reasons: the verdict's reasons.
    """

    def __init__(self, quote: str, verdict: Any) -> None:
        self.quote = quote
        self.verdict = verdict
        self.reasons = verdict.reasons
        shown = "; ".join(r.message for r in verdict.reasons) or "no role may approve it"
        super().__init__(
            "discount",
            quote,
            "discounts some role of the policy may approve, and prices at or above every floor",
            message=f"quote {quote!r} cannot be submitted: {shown}",
        )


class InvalidTypeError(ValidationError, TypeError):
    """A value of the wrong type, e.g. a ``float`` where money needs a ``Decimal``."""


class CurrencyMismatchError(ValidationError):
    """Two amounts in different currencies were combined without a rate source.

    Attributes:
        currencies: the currency codes that met, in the order they met.
    """

    def __init__(self, *currencies: str, operation: str = "combine") -> None:
        self.currencies = currencies
        shown = " and ".join(currencies)
        super().__init__(
            "currency",
            currencies,
            "one currency",
            message=(
                f"cannot {operation} amounts in {shown}: convert them first "
                "(pass a rate source) or keep per-currency totals"
            ),
        )


class StageError(ValidationError):
    """A stage key that the stage plan does not know, or a stage move it does not allow."""


class ApprovalError(SalesflowError):
    """Base of the approval engine's refusals."""


class NotAuthorizedError(ApprovalError, PermissionError):
    """An actor may not perform an action on a subject.

    Attributes:
        actor: the actor's id.
        action: the action that was refused (``"approve"``, ``"opportunity.update"``...).
        subject: the subject's id (or a short description of it).
        reason: why it was refused.
    """

    def __init__(self, actor: str, action: str, subject: str, reason: str = "") -> None:
        self.actor = actor
        self.action = action
        self.subject = subject
        self.reason = reason
        message = f"{actor!r} may not {action} {subject}"
        if reason:
            message += f": {reason}"
        super().__init__(message)


class TransitionNotAllowedError(ApprovalError):
    """An action that the current state of a workflow or lifecycle does not allow.

    Attributes:
        action: the attempted action.
        state: the state the subject was in.
        subject: the subject's id.
    """

    def __init__(self, action: str, state: str, subject: str, reason: str = "") -> None:
        self.action = action
        self.state = state
        self.subject = subject
        self.reason = reason
        message = f"cannot {action} {subject} while it is {state}"
        if reason:
            message += f": {reason}"
        super().__init__(message)


class ContractLockedError(SalesflowError):
    """A change to a contract that is locked (in review) or frozen (formal).

    Attributes:
        contract: the contract id.
        state: the contract's state.
        change: the change that was attempted.
    """

    def __init__(self, contract: str, state: str, change: str) -> None:
        self.contract = contract
        self.state = state
        self.change = change
        if state == "in_review":
            hint = "withdraw or reject the review first"
        elif state == "formal":
            hint = "a formal contract is frozen; make an amendment instead"
        else:  # terminated, expired: signed, so just as frozen
            hint = "a signed contract is frozen; make a new contract instead"
        super().__init__(f"contract {contract!r} is {state}: cannot {change} ({hint})")


class ConcurrencyError(SalesflowError):
    """Saving an aggregate from a stale version: somebody else saved it first.

    Attributes:
        kind: the aggregate kind (``"opportunity"``...).
        id: the aggregate id.
        expected: the version (or storage revision) the caller had read; 0 when adding a new one.
        actual: the version that is stored now (``None`` if it was deleted or never stored).
    """

    def __init__(
        self, kind: str, id: str, expected: int, actual: int | None, *, message: str | None = None
    ) -> None:
        self.kind = kind
        self.id = id
        self.expected = expected
        self.actual = actual
        if message is None and expected == 0:
            message = f"cannot add {kind} {id!r}: one with that id or key is already stored"
        elif message is None:
            stored = "absent" if actual is None else f"at version {actual}"
            message = (
                f"{kind} {id!r} was saved from version {expected} but is {stored}: "
                "reload it and apply the change again"
            )
        super().__init__(message)


class NotFoundError(SalesflowError, LookupError):
    """Something looked up by key does not exist.

    Attributes:
        kind: what was looked up (``"opportunity"``, ``"product"``...).
        key: the key that was not found.
    """

    def __init__(self, kind: str, key: object, hint: str = "") -> None:
        self.kind = kind
        self.key = key
        message = f"no {kind} {key!r}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class StorageError(SalesflowError):
    """A storage backend failed; the driver's error is chained as ``__cause__``."""


class SchemaVersionError(StorageError):
    """A database was written by a newer salesflow than the one opening it.

    Attributes:
        found: the schema version stored in the database.
        supported: the newest schema version this salesflow knows.
    """

    def __init__(self, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"the database has schema version {found}, newer than {supported}, the newest this "
            "salesflow knows: upgrade salesflow to open it"
        )


class PluginError(SalesflowError):
    """A plugin failed to load or broke the hook contract.

    Attributes:
        plugins: the names of the plugins at fault, as registered (empty when not known).
        scheme: the storage URL scheme concerned (two plugins claiming it), or ``None``.
    """

    def __init__(
        self, message: str = "", *, plugins: tuple[str, ...] = (), scheme: str | None = None
    ) -> None:
        super().__init__(message)
        self.plugins = plugins
        self.scheme = scheme


class BackendNotFoundError(PluginError, LookupError):
    """No registered storage backend (or call source...) handles the requested name or scheme.

    Attributes:
        requested: the scheme or name that was asked for.
        available: the ones that are registered.
    """

    def __init__(self, requested: str, available: list[str], kind: str = "storage backend") -> None:
        self.requested = requested
        self.available = sorted(available)
        shown = ", ".join(self.available) or "none"
        super().__init__(f"no {kind} for {requested!r}; registered: {shown}")


class MissingDependencyError(SalesflowError, ImportError):
    """An optional feature needs a package that is not installed.

    Attributes:
        package: the missing package.
        extra: the salesflow extra that installs it (``pip install "salesflow[extra]"``).
    """

    def __init__(self, package: str, extra: str, feature: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f'{feature} needs {package}, which is not installed: pip install "salesflow[{extra}]"',
            name=package,
        )
