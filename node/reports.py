"""Exports for the finance bureau and auditors: a report's rows (node/store/reports.py) as
CSV (safe in a spreadsheet, node/csvout.py) or JSON lines, times as ISO 8601."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from node.clock import people_times
from node.csvout import Writer
from node.store.reports import REPORTS, rows

__all__ = ["FORMATS", "REPORTS", "export"]

FORMATS = ("csv", "json")


def export(db_path: Path, report: str, fmt: str, out: TextIO, region: str) -> int:
    """Write one report as CSV or JSON lines; returns the number of rows. ``region`` is this
    node's (the captures report tells local captures from cross-region ones by it)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    columns, found = rows(db_path, report, region)
    found = [people_times(row) for row in found]
    if fmt == "json":
        for row in found:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        writer = Writer(out)
        writer.writerow(columns)
        writer.writerows([row[c] for c in columns] for row in found)
    return len(found)
