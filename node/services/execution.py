"""Budget execution (预算执行): one report per fiscal year that a finance bureau can file as it is.

Every figure comes from the books, on one read transaction: the budget and what is left of it
(the ledger's pool), the year's vouchers in aggregate (issued, captured, reclaimed as expired
or revoked, outstanding), the captures on them by provider and city, what this city paid its
providers and what it owes and is owed between cities. The breakdowns (holder category,
district, compute class, month, provider, partner city) each add up to the totals, and
``reconcile_txn`` checks the totals against the ledger: ``suanli check`` runs it for every
year with a policy. Formats: the dict (JSON), CSV rows and a printable HTML page
(``node/reports.py``).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

from node.clock import iso
from node.domain.windows import CST, window_bounds
from node.store import books
from node.store import execution as store

REPORT_TYPE = "suanli.budget_execution.v1"


EVER = (0, 2**62)  # all of a fiscal year's vouchers, whenever their money moved


def _bounds(year: int) -> tuple[int, int]:
    start = dt.datetime(year, 1, 1, tzinfo=CST)
    end = dt.datetime(year + 1, 1, 1, tzinfo=CST)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def _add(table: dict[str, dict[str, Any]], key: str, label: str, **figures: int) -> None:
    row = table.setdefault(key, {label: key})
    for name, value in figures.items():
        row[name] = row.get(name, 0) + value


def period_of(year: int, window: str | None) -> tuple[int, int, int, int]:
    """(vouchers' start, end; the calendar's start, end). A year report covers everything of
    the year's vouchers, whenever it happened (a voucher stays valid into the next year), and
    the calendar year for payments and other cities' vouchers; a window report covers what
    happened in the window, for both."""
    if window is None:
        return (*EVER, *_bounds(year))
    start, end = window_bounds(window)
    return start, end, start, end


def report_txn(
    conn: sqlite3.Connection,
    year: int,
    region: str,
    city: str,
    now_ms: int,
    window: str | None = None,
) -> dict[str, Any]:
    v_start, v_end, start, end = period_of(year, window)
    funded, pool = books.budget(conn, year)
    by: dict[str, dict[str, dict[str, Any]]] = {
        k: {} for k in ("category", "district", "compute_class", "month", "provider", "partner")
    }
    issued = outstanding = count = 0
    for r in store.vouchers(conn, year, v_start, v_end):
        face = int(r["face_fen"])
        issued, count = issued + face, count + r["vouchers"]
        outstanding += int(r["available_fen"]) + int(r["held_fen"])
        for key, label in ((r["category"], "category"), (r["district"], "district")):
            _add(by[label], key, label, vouchers=r["vouchers"], issued_fen=face, captured_fen=0)
        _add(
            by["compute_class"],
            r["compute_class"],
            "compute_class",
            issued_fen=face,
            captured_fen=0,
        )
        _add(by["month"], r["month"], "month", issued_fen=face, captured_fen=0)
    expired, revoked = store.reclaims(conn, year, v_start, v_end)
    captured = here = elsewhere = 0
    for c in store.captures(conn, year, v_start, v_end):
        fen = int(c["captured_fen"])
        captured += fen
        for key, label in (
            (c["category"], "category"),
            (c["district"], "district"),
            (c["compute_class"], "compute_class"),
            (c["month"], "month"),
        ):
            _add(by[label], key, label, captured_fen=fen)
        key = f"{c['acquirer_region']}/{c['provider_id']}"
        row = by["provider"].setdefault(
            key,
            {"provider": key, "region": c["acquirer_region"], "name": c["provider_name"] or ""},
        )
        row["captures"] = row.get("captures", 0) + c["captures"]
        row["captured_fen"] = row.get("captured_fen", 0) + fen
        if c["acquirer_region"] == region:
            here += fen
        else:
            elsewhere += fen
            _add(by["partner"], c["acquirer_region"], "partner", ours_captured_there_fen=fen)
    foreign = 0
    for f in store.foreign_captures(conn, start, end):
        foreign += int(f["captured_fen"])
        _add(
            by["partner"],
            f["issuer_region"],
            "partner",
            theirs_captured_here_fen=int(f["captured_fen"]),
        )
    owed_to = owed_by = 0
    for name, balance in books.positions(conn):
        kind, peer = name.split(":", 1)
        if kind == "due":  # we issued, they acquired: we owe them
            owed_to += balance
            _add(by["partner"], peer, "partner", we_owe_fen=balance)
        else:
            owed_by += -balance
            _add(by["partner"], peer, "partner", owed_to_us_fen=-balance)
    defaults = {
        "category": ("vouchers", "issued_fen", "captured_fen"),
        "district": ("vouchers", "issued_fen", "captured_fen"),
        "compute_class": ("issued_fen", "captured_fen"),
        "month": ("issued_fen", "captured_fen"),
        "partner": (
            "ours_captured_there_fen",
            "theirs_captured_here_fen",
            "we_owe_fen",
            "owed_to_us_fen",
        ),
    }
    for section, fields in defaults.items():
        for row in by[section].values():
            for field in fields:
                row.setdefault(field, 0)
    return {
        "type": REPORT_TYPE,
        "region": region,
        "city": city,
        "fiscal_year": year,
        "window": window,
        "period": {"start": iso(start), "end": iso(end)},
        "produced_at": iso(now_ms),
        "totals": {
            "budget_fen": funded,
            "vouchers": count,
            "issued_fen": issued,
            "reclaimed_fen": expired + revoked,
            "reclaimed_expired_fen": expired,
            "reclaimed_revoked_fen": revoked,
            "committed_fen": issued - expired - revoked,
            "remaining_fen": pool,
            "captured_fen": captured,
            "captured_by_our_providers_fen": here,
            "captured_by_other_cities_providers_fen": elsewhere,
            "outstanding_fen": outstanding,
            "other_cities_vouchers_captured_here_fen": foreign,
            "paid_to_providers_fen": store.paid(conn, start, end),
            "we_owe_other_cities_fen": owed_to,
            "other_cities_owe_us_fen": owed_by,
        },
        **{f"by_{k}": [v[1] for v in sorted(t.items())] for k, t in by.items()},
    }


def reconcile_txn(
    conn: sqlite3.Connection, year: int, region: str, window: str | None = None
) -> list[str]:
    """The report's totals against the ledger and against its own breakdowns."""
    report = report_txn(conn, year, region, "", 0, window)
    t = report["totals"]
    problems = []
    v_start, v_end, _, _ = period_of(year, window)
    ledger = store.ledger_year(conn, year, v_start, v_end)
    for label, mine, theirs in (
        ("issued", t["issued_fen"], ledger["issue"]),
        ("reclaimed", t["reclaimed_fen"], ledger["reclaim"]),
        ("captured", t["captured_fen"], ledger["capture"]),
        ("committed", t["committed_fen"], t["budget_fen"] - t["remaining_fen"]),
        (
            "captured here + elsewhere",
            t["captured_by_our_providers_fen"] + t["captured_by_other_cities_providers_fen"],
            t["captured_fen"],
        ),
        (
            "issued = captured + reclaimed + outstanding",
            t["issued_fen"],
            t["captured_fen"] + t["reclaimed_fen"] + t["outstanding_fen"],
        ),
    ):
        if mine != theirs:
            problems.append(f"budget execution {year}: {label} {mine} ≠ {theirs} in the books")
    for section, field, total in (
        ("by_category", "issued_fen", t["issued_fen"]),
        ("by_district", "issued_fen", t["issued_fen"]),
        ("by_compute_class", "issued_fen", t["issued_fen"]),
        ("by_compute_class", "captured_fen", t["captured_fen"]),
        ("by_category", "captured_fen", t["captured_fen"]),
        ("by_district", "captured_fen", t["captured_fen"]),
        ("by_month", "issued_fen", t["issued_fen"]),
        ("by_month", "captured_fen", t["captured_fen"]),
        ("by_provider", "captured_fen", t["captured_fen"]),
    ):
        added = sum(row.get(field, 0) for row in report[section])
        if added != total:
            problems.append(
                f"budget execution {year}: {section} {field} adds up to {added}, not {total}"
            )
    return problems
