"""Paying providers (兑付): what a payment record must say, and the payment advice a provider
can verify offline (docs/settlement.md, "Paying providers"). Pure rules, no I/O."""

from __future__ import annotations

import datetime as dt
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
