"""Paying providers (兑付): what a payment record must say, and the payment advice a provider
can verify offline (docs/settlement.md, "Paying providers"). Pure rules, no I/O."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from node import errors
from node.domain.fields import CONTROL, parse_date

PAYMENT_TAG = b"suanli/payment/v1\x00"
ADVICE_TYPE = "suanli.payment.v1"
REFERENCE_MAX = 64
REASON_MAX = 500
# How far ahead a value date may be (a transfer scheduled with the bank), and how far back.
FUTURE_DAYS = 366
EARLIEST = dt.date(2000, 1, 1)


def bank_reference(text: str) -> str:
    """The bank's reference for the transfer: 1 to 64 printable characters, taken exactly."""
    if not 1 <= len(text) <= REFERENCE_MAX or CONTROL.search(text) or text != text.strip():
        raise errors.InvalidRequest(
            f"bank_reference: 1 to {REFERENCE_MAX} printable characters, without white space "
            "around them"
        )
    return text


def value_date(text: str, today: dt.date) -> str:
    """The date the money moves at the bank: a calendar date, not before 2000 and at most
    a year ahead."""
    day = parse_date("value_date", text)
    if not EARLIEST <= day <= today + dt.timedelta(days=FUTURE_DAYS):
        raise errors.InvalidRequest(
            f"value_date: must be between {EARLIEST} and {today + dt.timedelta(days=FUTURE_DAYS)}"
        )
    return day.isoformat()


def advice(
    *,
    region: str,
    payment_id: str,
    kind: str,
    window: str,
    provider_id: str,
    provider_uscc: str,
    statement_sha256: str,
    amount_fen: int,
    value_date: str,
    bank_reference: str,
    reverses: str,
    reason: str,
    recorded_at: str,
    key_id: str,
) -> dict[str, Any]:
    """The payment advice: canonical JSON of this, signed with ``PAYMENT_TAG``. It names the
    payout statement it pays by the SHA-256 of that statement's signed bytes."""
    return {
        "type": ADVICE_TYPE,
        "region": region,
        "payment_id": payment_id,
        "kind": kind,
        "window": window,
        "provider_id": provider_id,
        "provider_uscc": provider_uscc,
        "statement_sha256": statement_sha256,
        "amount_fen": amount_fen,
        "value_date": value_date,
        "bank_reference": bank_reference,
        "reverses": reverses,
        "reason": reason,
        "recorded_at": recorded_at,
        "key_id": key_id,
    }


# Bank reconciliation ------------------------------------------------------------------------

BANK_COLUMNS = ("date", "amount", "reference", "counterparty")
MAX_BANK_LINES = 100_000


def yuan_to_fen(name: str, text: str) -> int:
    """A bank amount in yuan, ``1234.5`` or ``1234.56`` (no sign, no thousands separator),
    read exactly into fen (never through a float)."""
    whole, _, cents = text.partition(".")
    if not whole.isascii() or not whole.isdigit() or len(whole) > 13:
        raise errors.InvalidRequest(
            f"{name}: {text[:30]!r} is not an amount in yuan such as 400.00"
        )
    if cents and (not cents.isascii() or not cents.isdigit() or len(cents) > 2):
        raise errors.InvalidRequest(f"{name}: {text[:30]!r} has more than two decimals")
    fen = int(whole) * 100 + int((cents or "0").ljust(2, "0"))
    if fen <= 0:
        raise errors.InvalidRequest(f"{name}: must be more than 0")
    return fen


def bank_line(number: int, row: dict[str, str]) -> dict[str, Any]:
    """One line of the bank's statement of transfers, checked; ``number`` counts from 1 (the
    header is line 0) so that an error names the line."""
    where = f"line {number}"
    missing = [c for c in BANK_COLUMNS if not (row.get(c) or "").strip()]
    if missing:
        raise errors.InvalidRequest(f"{where}: {missing[0]} is empty")
    counterparty = row["counterparty"].strip()
    if len(counterparty) > 200 or CONTROL.search(counterparty):
        raise errors.InvalidRequest(f"{where}: counterparty: at most 200 printable characters")
    return {
        "line": number,
        "date": parse_date(f"{where}: date", row["date"].strip()).isoformat(),
        "amount_fen": yuan_to_fen(f"{where}: amount", row["amount"].strip()),
        "reference": bank_reference(row["reference"].strip()),
        "counterparty": counterparty,
    }


def match(lines: list[dict[str, Any]], payments: list[dict[str, Any]]) -> dict[str, Any]:
    """The match rule: a bank line and a recorded payment (not reversed) match when their bank
    reference, amount and date (the payment's value date) are all equal. Returns the matches,
    the bank lines that match nothing (with why, when a payment has that reference), and the
    payments no line matched."""
    by_reference = {p["bank_reference"]: p for p in payments}
    matched, unmatched_lines, used = [], [], set()
    for line in lines:
        payment = by_reference.get(line["reference"])
        if payment is None or payment["id"] in used:
            why = (
                "no payment awaiting the bank has this reference"
                if payment is None
                else "a second line for the same payment"
            )
            unmatched_lines.append({**line, "why": why})
            continue
        differs = [
            f"{field} {line[field]} ≠ {payment[key]}"
            for field, key in (("amount_fen", "amount_fen"), ("date", "value_date"))
            if line[field] != payment[key]
        ]
        if differs:
            unmatched_lines.append(
                {**line, "why": f"payment {payment['id']} differs: {', '.join(differs)}"}
            )
            continue
        used.add(payment["id"])
        matched.append({"payment_id": payment["id"], "line": line})
    unmatched_payments = [p for p in payments if p["id"] not in used]
    return {
        "matched": matched,
        "unmatched_lines": unmatched_lines,
        "unmatched_payments": unmatched_payments,
    }


def bank_statement(text: str) -> list[dict[str, Any]]:
    """The bank's statement of transfers as CSV (UTF-8, a header row naming at least ``date,
    amount, reference, counterparty`` in any order, any case; other columns ignored), every
    line checked (``bank_line``). An error names the line and the column."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in reader.fieldnames or ()]
    missing = [c for c in BANK_COLUMNS if c not in header]
    if missing:
        raise errors.InvalidRequest(
            f"bank statement: the header row must name {', '.join(BANK_COLUMNS)}; "
            f"{missing[0]} is missing"
        )
    reader.fieldnames = header
    lines = []
    for number, row in enumerate(reader, start=1):
        if number > MAX_BANK_LINES:
            raise errors.InvalidRequest(f"bank statement: at most {MAX_BANK_LINES} lines")
        if None in row:
            raise errors.InvalidRequest(f"line {number}: more cells than the header has")
        lines.append(bank_line(number, {k: v or "" for k, v in row.items()}))
    return lines
