"""Building frozen value objects from values that are already checked.

Sources and pricing build value objects by the hundred thousand; attrs' generated ``__init__``
(keyword handling, converters, validators) is most of that cost when the values were checked a step
before. :class:`SlotBuilder` fills the slots of a frozen class directly, in a fixed field order. It
is for values checked by the caller only: the class's ``__attrs_post_init__`` is not run unless the
caller runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

__all__ = ["SlotBuilder"]

T = TypeVar("T")


class SlotBuilder(Generic[T]):
    """Builds a ``cls`` from its ``fields``' values, in that order, without its ``__init__``."""

    def __init__(self, cls: type[T], fields: Sequence[str]) -> None:
        self.cls = cls
        self.fields = tuple(fields)
        # The slots' own setters skip the frozen class's __setattr__ (which refuses), and bound
        # once they cost no descriptor lookup per object.
        self._setters: tuple[Callable[[Any, Any], None], ...] = tuple(
            cls.__dict__[name].__set__ for name in self.fields
        )

    def __call__(self, values: Iterable[Any]) -> T:
        """A new ``cls`` whose fields hold ``values`` (one per field, in :attr:`fields` order)."""
        built: T = object.__new__(self.cls)
        for set_slot, value in zip(self._setters, values, strict=True):
            set_slot(built, value)
        return built
