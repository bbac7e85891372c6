"""The codec: aggregates to JSON documents and back, exactly (with cattrs).

Decimals become text (``"12.30"``, never a float), dates and aware datetimes ISO 8601 (with their
offset), enums their values, tuples and frozensets lists; attrs classes are rebuilt through their
own constructors, so a document that does not describe a valid aggregate is refused with the
aggregate's own validation error. Every document kind and opportunities round-trip exactly::

    from salesflow.storage import codec

    text = codec.dumps(quote)  # keys sorted: equal aggregates give equal text
    assert codec.loads(text, Quote) == quote

The SQL backend stores documents as this text, and :class:`~salesflow.storage.BaseStorage`
encodes with it unless a subclass keeps objects as they are (the in-memory backend does).
"""

from __future__ import annotations

import functools
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = ["dumps", "loads"]


@functools.cache
def _converter() -> Any:
    # cattrs is imported on first use: only storage needs it.
    from cattrs.preconf.json import make_converter

    converter = make_converter()
    converter.register_unstructure_hook(Decimal, str)
    converter.register_structure_hook(Decimal, lambda value, _type: Decimal(value))
    converter.register_unstructure_hook(datetime, lambda value: value.isoformat())
    converter.register_structure_hook(datetime, lambda value, _type: datetime.fromisoformat(value))
    converter.register_unstructure_hook(date, lambda value: value.isoformat())
    converter.register_structure_hook(date, lambda value, _type: date.fromisoformat(value))
    return converter


def dumps(item: Any) -> str:
    """``item`` as a JSON document (keys sorted, so equal aggregates give equal text)."""
    return json.dumps(_converter().unstructure(item), sort_keys=True, ensure_ascii=False)


def loads(text: str, cls: type) -> Any:
    """The aggregate of class ``cls`` that ``text`` (from :func:`dumps`) describes."""
    return _converter().structure(json.loads(text), cls)
