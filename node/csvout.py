"""CSV that is safe to open in a spreadsheet: every CSV the node writes goes through here.

A cell that a spreadsheet would read as a formula (OWASP, "CSV Injection") is written with an
apostrophe in front: a text value beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return. So that the rule can be undone exactly (a provider recomputing its payout digest from
the CSV), a text value that already begins with an apostrophe gets one more. To read a cell
back: if it begins with ``'``, drop that one character. Numbers are written as numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")


def cell(value: Any) -> Any:
    """The value as it goes into a CSV cell."""
    if isinstance(value, str) and value.startswith(TRIGGERS):
        return "'" + value
    return value


def original(text: str) -> str:
    """A cell's text as it was before ``cell`` (for readers of the node's CSV)."""
    return text[1:] if text.startswith("'") else text


class Writer:
    """``csv.writer`` with every cell made safe."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Sequence[Any]) -> None:
        self._writer.writerow([cell(v) for v in row])

    def writerows(self, rows: Iterable[Sequence[Any]]) -> None:
        self._writer.writerows([cell(v) for v in row] for row in rows)
