"""Spreadsheet-safe text cells: what every CSV the library writes passes its text through.

A spreadsheet reads a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
as a formula (CSV injection). :func:`neutralise_cell` puts a ``'`` before such a text and
:func:`restore_cell` takes it off again, so writing and reading back give the same text. Pure string
functions, below the domain (the catalog writes CSV) and the CSV layer (:mod:`salesflow.tabular`).
"""

from __future__ import annotations

from typing import Final

__all__ = ["FORMULA_START", "RISKY_START", "neutralise_cell", "restore_cell"]

FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
"""The first characters that make a spreadsheet read a cell as a formula (OWASP's CSV injection
list)."""

RISKY_START: Final = frozenset((*FORMULA_START, "'"))
"""The first characters of a text :func:`neutralise_cell` may change (a quick test for hot loops)."""


def neutralise_cell(text: str) -> str:
    """``text`` made safe for a spreadsheet cell: a ``'`` before a text that starts with one of
    :data:`FORMULA_START` (``=1+1`` -> ``'=1+1``), and before a text that is ``'`` characters
    followed by one of them (``'=1`` -> ``''=1``), so that :func:`restore_cell` gives back exactly
    the text. Every other text is returned unchanged. Use it for every text cell of a CSV file
    meant for people; numbers written by the program itself need not pass through it."""
    if text[:1] not in RISKY_START:  # the common case, checked first
        return text
    return "'" + text if text.lstrip("'").startswith(FORMULA_START) else text


def restore_cell(text: str) -> str:
    """The text :func:`neutralise_cell` was given: one leading ``'`` removed from a text that is
    ``'`` characters followed by one of :data:`FORMULA_START`; every other text unchanged."""
    if text[:1] == "'" and text.lstrip("'").startswith(FORMULA_START):
        return text[1:]
    return text
