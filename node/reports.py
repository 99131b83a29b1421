"""Exports for the finance bureau and auditors: a report's rows (node/store/reports.py) as
CSV (safe in a spreadsheet, node/csvout.py) or JSON lines, times as ISO 8601."""

from __future__ import annotations

import html
import json
from typing import Any, TextIO

from node.clock import people_times
from node.csvout import Writer
from node.store.reports import REPORTS, rows

__all__ = ["FORMATS", "REPORTS", "export"]

FORMATS = ("csv", "json")


def export(conn: Any, report: str, fmt: str, out: TextIO, region: str) -> int:
    """Write one report as CSV or JSON lines; returns the number of rows. ``region`` is this
    node's (the captures report tells local captures from cross-region ones by it)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    columns, found = rows(conn, report, region)
    found = [people_times(row) for row in found]
    if fmt == "json":
        for row in found:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        writer = Writer(out)
        writer.writerow(columns)
        writer.writerows([row[c] for c in columns] for row in found)
    return len(found)


# The budget-execution report (node/services/execution.py) ----------------------------------

EXECUTION_FORMATS = ("json", "csv", "html")
SECTIONS = (
    ("by_category", "category", "Holder category / 持有人类别"),
    ("by_district", "district", "District (区县, from the holder's USCC)"),
    ("by_compute_class", "compute_class", "Compute class / 算力类别"),
    ("by_month", "month", "Month (China Standard Time)"),
    ("by_provider", "provider", "Provider (city/id)"),
    ("by_partner", "partner", "Partner city"),
)


def execution_csv(report: dict[str, Any], out: TextIO) -> int:
    """One row per figure: ``section, key, figure, value`` (fen as integers), the totals
    first; a spreadsheet sums a section by filtering on it."""
    writer = Writer(out)
    writer.writerow(("section", "key", "figure", "value"))
    rows = [("totals", "", name, value) for name, value in report["totals"].items()]
    for section, key, _ in SECTIONS:
        for row in report[section]:
            rows += [
                (section, row[key], f, v)
                for f, v in row.items()
                if f not in (key, "name", "region")
            ]
    writer.writerows(rows)
    return len(rows)


def _yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}" if fen >= 0 else "-" + _yuan(-fen)


def execution_html(report: dict[str, Any]) -> str:
    """A printable page (A4, no script, no outside resource): the city, the period, the totals
    in yuan with two decimals, each breakdown, and when it was produced."""
    esc = html.escape
    t = report["totals"]
    total_rows = "".join(
        f"<tr><th>{esc(name.removesuffix('_fen').replace('_', ' '))}</th>"
        f"<td>{_yuan(value) if name.endswith('_fen') else value}</td></tr>"
        for name, value in t.items()
    )
    sections = []
    for section, key, title in SECTIONS:
        rows = report[section]
        if not rows:
            continue
        fields = [f for f in rows[0] if f not in (key,)]
        head = "".join(f"<th>{esc(f.removesuffix('_fen').replace('_', ' '))}</th>" for f in fields)
        body = "".join(
            f"<tr><td>{esc(str(r[key]))}</td>"
            + "".join(
                f"<td>{_yuan(r[f]) if f.endswith('_fen') else esc(str(r[f]))}</td>" for f in fields
            )
            + "</tr>"
            for r in rows
        )
        sections.append(
            f"<h2>{esc(title)}</h2><table><tr><th>{esc(key)}</th>{head}</tr>{body}</table>"
        )
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{esc(report['city'])} {report['fiscal_year']} 算力券预算执行</title>"
        "<style>@page{size:A4;margin:15mm}body{font-family:'Noto Sans CJK SC',sans-serif;"
        "font-size:10pt}table{border-collapse:collapse;margin-bottom:1em}"
        "th,td{border:1px solid #999;padding:2px 6px;text-align:left}"
        "td{text-align:right}</style></head><body>"
        f"<h1>{esc(report['city'])} ({esc(report['region'])}) 算力券预算执行 "
        f"Budget execution {report['fiscal_year']}"
        f"{' window ' + esc(report['window']) if report['window'] else ''}</h1>"
        f"<p>Period {esc(report['period']['start'])} to {esc(report['period']['end'])}; "
        f"produced {esc(report['produced_at'])} from the node's books.</p>"
        f"<h2>Totals</h2><table>{total_rows}</table>{''.join(sections)}</body></html>\n"
    )
