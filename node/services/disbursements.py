"""Paying providers (兑付): payments recorded against signed payout statements, reversals, and
the signed payment advice a provider verifies offline.

An operator records a payment when the city's bank has (or will, on the value date) move the
money: which payout statement (window and provider), how much, the value date, the bank's
transfer reference, and, from the caller, who recorded it. In the same transaction:

* the amount is checked against the statement: what was paid so far (payments less
  reversals) plus this one may not exceed its total (``overpayment``); a bank reference is
  used once per provider (``duplicate_reference``: the same transfer recorded twice);
* the ledger moves the amount from ``payable:<provider>`` to ``paid:<provider>``;
* the payment advice is signed (``suanli.payment.v1``, docs/settlement.md) and kept with
  the row, which is never edited (schema triggers);
* the audit trail names the operator.

A mistake is undone by a reversal, a row of its own that names the payment, the whole amount
and a reason, signed the same way, moving the money back to payable. A payment is reversed
at most once, a reversal never.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from typing import Any

from node import errors
from node.clock import Clock, iso
from node.domain import payments as rules
from node.domain.fields import CONTROL
from node.domain.windows import CST
from node.faults import crash_point
from node.keys import NodeKey, canonical_json
from node.services.common import Principal, new_id, require_operator
from node.store import ledger, registry
from node.store import payments as store
from node.store.engine import Books


class Disbursements:
    def __init__(self, db: Books, clock: Clock, key: NodeKey, region: str) -> None:
        self._db = db
        self._clock = clock
        self._key = key
        self.region = region

    async def pay(
        self,
        who: Principal,
        window_id: str,
        provider_id: str,
        amount_fen: int,
        value_date: str,
        bank_reference: str,
    ) -> dict[str, Any]:
        """Record a payment against a payout statement; returns it with its advice."""
        require_operator(who)
        now = self._clock.now_ms()
        today = dt.datetime.fromtimestamp(now / 1000, CST).date()
        day = rules.value_date(value_date, today)
        reference = rules.bank_reference(bank_reference)

        def txn(conn: sqlite3.Connection) -> dict[str, Any]:
            payout = store.payout(conn, window_id, provider_id)
            if payout is None:
                raise errors.PayoutNotFound(
                    f"no signed payout statement for provider {provider_id} in window "
                    f"{window_id}: nothing is owed there"
                )
            paid, total = int(payout["paid_fen"]), int(payout["total_fen"])
            if paid + amount_fen > total:
                raise errors.Overpayment(
                    f"{window_id}/{provider_id}: {paid} of {total} fen already paid; "
                    f"{amount_fen} more would exceed the statement by "
                    f"{paid + amount_fen - total} fen"
                )
            earlier = store.reference_used(conn, provider_id, reference)
            if earlier is not None:
                raise errors.DuplicateReference(
                    f"bank_reference: {reference} was already recorded for this provider "
                    f"(payment {earlier}); a transfer is recorded once"
                )
            row = self._record_txn(
                conn,
                payout,
                kind="payment",
                amount_fen=amount_fen,
                value_date=day,
                bank_reference=reference,
                reverses="",
                reason="",
                actor=who.actor,
                now=now,
            )
            ledger.transfer(
                conn,
                now,
                "payment",
                row["id"],
                ledger.payable(provider_id),
                ledger.paid(provider_id),
                amount_fen,
            )
            ledger.audit(
                conn,
                now,
                who.actor,
                "payment.record",
                row["id"],
                window=window_id,
                provider_id=provider_id,
                amount_fen=amount_fen,
                value_date=day,
                bank_reference=reference,
            )
            return row

        row = await self._db.run("payment_record", txn)
        crash_point("settlement.after_payment")
        return _shown(row)

    async def reverse(self, who: Principal, payment_id: str, reason: str) -> dict[str, Any]:
        """Undo a payment, whole, with a reason: a new signed row; the money goes back to
        payable."""
        require_operator(who)
        reason = reason.strip()
        if not reason or len(reason) > rules.REASON_MAX or CONTROL.search(reason):
            raise errors.InvalidRequest(
                f"reason: required, at most {rules.REASON_MAX} printable characters"
            )
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> dict[str, Any]:
            original = store.get(conn, payment_id)
            if original is None:
                raise errors.PaymentNotFound(f"no payment {payment_id}")
            if original["kind"] != "payment":
                raise errors.AlreadyReversed(f"{payment_id} is a reversal; it cannot be reversed")
            undone = store.reversal_of(conn, payment_id)
            if undone is not None:
                raise errors.AlreadyReversed(f"{payment_id} was already reversed by {undone}")
            payout = store.payout(conn, original["window_id"], original["provider_id"])
            assert payout is not None  # a payment's statement is never removed
            provider_id = str(original["provider_id"])
            row = self._record_txn(
                conn,
                payout,
                kind="reversal",
                amount_fen=int(original["amount_fen"]),
                value_date=str(original["value_date"]),
                bank_reference=str(original["bank_reference"]),
                reverses=payment_id,
                reason=reason,
                actor=who.actor,
                now=now,
            )
            ledger.transfer(
                conn,
                now,
                "payment_reversal",
                row["id"],
                ledger.paid(provider_id),
                ledger.payable(provider_id),
                int(original["amount_fen"]),
            )
            ledger.audit(
                conn,
                now,
                who.actor,
                "payment.reverse",
                row["id"],
                reverses=payment_id,
                amount_fen=int(original["amount_fen"]),
                reason=reason,
            )
            return row

        return _shown(await self._db.run("payment_reverse", txn))

    def _record_txn(
        self,
        conn: sqlite3.Connection,
        payout: sqlite3.Row,
        *,
        kind: str,
        amount_fen: int,
        value_date: str,
        bank_reference: str,
        reverses: str,
        reason: str,
        actor: str,
        now: int,
    ) -> dict[str, Any]:
        provider = registry.get_provider(conn, payout["provider_id"])
        payment_id = new_id("pay")  # reversals too: one time-ordered sequence
        advice = canonical_json(
            rules.advice(
                region=self.region,
                payment_id=payment_id,
                kind=kind,
                window=payout["window_id"],
                provider_id=provider.id,
                provider_uscc=provider.uscc,
                statement_sha256=hashlib.sha256(bytes(payout["statement"])).hexdigest(),
                amount_fen=amount_fen,
                value_date=value_date,
                bank_reference=bank_reference,
                reverses=reverses,
                reason=reason,
                recorded_at=iso(now),
                key_id=self._key.key_id,
            )
        )
        row = {
            "id": payment_id,
            "window_id": payout["window_id"],
            "provider_id": provider.id,
            "kind": kind,
            "amount_fen": amount_fen,
            "value_date": value_date,
            "bank_reference": bank_reference,
            "reverses": reverses or None,
            "reason": reason,
            "recorded_by": actor,
            "recorded_at": now,
            "advice": advice,
            "signature": self._key.sign(rules.PAYMENT_TAG, advice),
            "key_id": self._key.key_id,
        }
        store.put(conn, **row)
        return row

    async def reconcile(
        self, who: Principal, lines: list[dict[str, Any]], confirm: bool
    ) -> dict[str, Any]:
        """Match the bank's statement of transfers (lines checked by ``rules.bank_line``) with
        the recorded payments the bank has not confirmed yet, by ``rules.match``. Nothing is
        recorded unless ``confirm``: then each match is kept as the bank's confirmation of
        that payment (never a new payment: an import alone marks nothing paid)."""
        require_operator(who)
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> dict[str, Any]:
            waiting = [dict(r) for r in store.awaiting_bank(conn)]
            result = rules.match(lines, waiting)
            if confirm:
                for m in result["matched"]:
                    line = m["line"]
                    store.confirm(
                        conn,
                        payment_id=m["payment_id"],
                        bank_date=line["date"],
                        amount_fen=line["amount_fen"],
                        bank_reference=line["reference"],
                        counterparty=line["counterparty"],
                        confirmed_by=who.actor,
                        confirmed_at=now,
                    )
                if result["matched"]:
                    ledger.audit(
                        conn,
                        now,
                        who.actor,
                        "payment.bank_confirm",
                        f"{len(result['matched'])} payments",
                        payments=[m["payment_id"] for m in result["matched"]],
                    )
            return {
                "confirmed": confirm,
                "matched": result["matched"],
                "unmatched_lines": result["unmatched_lines"],
                "unmatched_payments": [_shown(p) for p in result["unmatched_payments"]],
            }

        name = "bank_confirm" if confirm else "bank_match"
        return await (self._db.run(name, txn) if confirm else self._db.read(name, txn))

    async def listing(
        self,
        who: Principal,
        window_id: str | None,
        provider_id: str | None,
        limit: int = -1,
        after: str = "",
    ) -> list[dict[str, Any]]:
        """Payments and reversals in the order recorded; a provider sees its own only."""
        if who.role == "provider":
            provider_id = who.subject_id
        else:
            require_operator(who)
        rows = await self._db.read(
            "payments", lambda c: store.listing(c, window_id, provider_id, limit, after)
        )
        return [_shown(dict(r)) for r in rows]

    async def one(self, who: Principal, payment_id: str) -> dict[str, Any]:
        row = await self._db.read("payment", lambda c: store.get(c, payment_id))
        mine = row is not None and who.role == "provider" and row["provider_id"] == who.subject_id
        if row is None or not (mine or who.role in ("operator", "system")):
            raise errors.PaymentNotFound(f"no payment {payment_id}")
        return _shown(dict(row))


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """A payment as the API and CLI show it: the advice parsed (``canonical_json`` of it gives
    back the signed bytes) with its signature."""
    return {
        "id": row["id"],
        "kind": row["kind"],
        "window": row["window_id"],
        "provider_id": row["provider_id"],
        "amount_fen": row["amount_fen"],
        "value_date": row["value_date"],
        "bank_reference": row["bank_reference"],
        "reverses": row["reverses"],
        "reason": row["reason"],
        "recorded_by": row["recorded_by"],
        "bank_confirmed": row.get("bank_confirmed"),
        "recorded_at": iso(row["recorded_at"]),
        "advice": json.loads(bytes(row["advice"])),
        "signature": bytes(row["signature"]).hex(),
        "key_id": row["key_id"],
    }
