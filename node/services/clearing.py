"""Settling between cities (清算): the payer records its bank transfer, the payee confirms it,
and both books move exactly the statements the transfer covers from owed to settled.

The exchange, for two cities A (payer) and B (payee) (docs/settlement.md, "Settling between
cities", is the normative description):

1. A's operator records the transfer it made (``record``): amount, value date, the bank's
   reference. The node takes every agreed statement between A and B that no live transfer
   holds yet (up to a cut-off), nets them, and refuses unless A owes that net and the amount
   is exactly it. In one transaction: the transfer (``advised``), the statements it now holds,
   the TRANSFER_ADVICE in the outbox, the audit line. Then the outbox sends it until B answers.
2. B's node (``receive``) checks the advice against its own agreed statements: the same
   statements, totals and digests, none held by another transfer, the same net. It keeps the
   transfer as ``awaiting_confirmation`` (holding the statements) and answers a signed ACK, or a
   signed REFUSAL with a stable code; either is stored in its inbox with the effect, so a
   resend gets the same answer. On A, the answer moves the transfer on (``apply``): ACK →
   ``awaiting_confirmation``; REFUSAL → ``refused``, its statements free again.
3. B's operator checks the bank and confirms, or disputes with a reason (``answer``). In one
   transaction: a confirmation books the settlement (below), a dispute frees the statements;
   the RECEIPT_CONFIRMATION goes into the outbox. A's node applies it (``receive``) the same
   way, books the same settlement on its side, and answers ACK.

Booking, on each side, per statement held: what this city owed as issuer moves from
``due:<peer>`` to ``cleared:<peer>``; what it was owed as acquirer moves from ``cleared:<peer>``
to ``issuer:<peer>``. So ``cleared:<peer>`` holds the net money moved to that city (paid out
positive, received negative) and equals the confirmed transfers: ``suanli check`` verifies it.

Exactly once: each step's effect and its outgoing message commit together (the outbox), each
received message's effect and its signed answer commit together (the inbox), and each state
change is guarded by the state it leaves, so a repeated or late answer changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import sqlite3
from collections.abc import Callable
from typing import Any

from node import errors
from node.clock import Clock, iso
from node.domain import clearing as rules
from node.domain.clearing import Advice, Confirmation, Covered
from node.domain.payments import REASON_MAX, bank_reference
from node.domain.payments import value_date as checked_value_date
from node.domain.windows import CST
from node.faults import crash_point
from node.services.common import Principal, new_id, require_operator
from node.services.inboxed import apply_answer_once, receive_once_txn
from node.services.ports import (
    Acknowledged,
    AckSealer,
    Applied,
    ClearingWriter,
    Evidence,
    Inbound,
    Refusal,
    Row,
    Sender,
)
from node.store import clearing as store
from node.store import ledger
from node.store import settlement as statements
from node.store.engine import Books

logger = logging.getLogger(__name__)


def _covered(rows: list[sqlite3.Row]) -> tuple[Covered, ...]:
    return tuple(
        Covered(r["issuer"], r["acquirer"], r["window_id"], int(r["total_fen"]), r["digest"])
        for r in rows
    )


def book_txn(
    conn: sqlite3.Connection,
    own: str,
    peer: str,
    transfer_id: str,
    rows: list[sqlite3.Row],
    at: int,
) -> None:
    """Settle the statements a confirmed transfer holds, on this city's books."""
    for c in _covered(rows):
        if c.issuer == own:
            ledger.transfer(
                conn,
                at,
                "clearing",
                transfer_id,
                ledger.due(peer),
                ledger.cleared(peer),
                c.total_fen,
            )
        else:
            ledger.transfer(
                conn,
                at,
                "clearing",
                transfer_id,
                ledger.cleared(peer),
                ledger.issuer(peer),
                c.total_fen,
            )


def shown(row: sqlite3.Row, rows: list[sqlite3.Row] | None = None) -> dict[str, Any]:
    """A transfer as the API and the CLI show it."""
    out = row["direction"] == "out"
    view: dict[str, Any] = {
        "id": row["id"],
        "direction": row["direction"],
        "payer": None,
        "payee": None,
        "peer": row["peer"],
        "amount_fen": row["amount_fen"],
        "value_date": row["value_date"],
        "reference": row["reference"],
        "netting_id": row["netting_id"],
        "state": row["state"],
        "code": row["code"] or None,
        "reason": row["reason"] or None,
        "recorded_by": row["recorded_by"],
        "recorded_at": iso(row["recorded_at"]),
        "answered_by": row["answered_by"],
        "answered_at": iso(row["answered_at"]) if row["answered_at"] else None,
    }
    view["payer"], view["payee"] = ("self", row["peer"]) if out else (row["peer"], "self")
    if rows is not None:
        view["statements"] = [
            {
                "issuer": c.issuer,
                "acquirer": c.acquirer,
                "window": c.window,
                "total_fen": c.total_fen,
                "digest": c.digest,
            }
            for c in _covered(rows)
        ]
    return view


class Clearing:
    def __init__(
        self,
        db: Books,
        clock: Clock,
        region: str,
        writer: ClearingWriter,
        sender: Sender,
        sealer: AckSealer,
        is_peer: Callable[[str], bool],
    ) -> None:
        self._db = db
        self._clock = clock
        self.region = region
        self._writer = writer
        self._sender = sender
        self._sealer = sealer
        self._is_peer = is_peer

    def _self(self, view: dict[str, Any]) -> dict[str, Any]:
        for side in ("payer", "payee"):
            if view[side] == "self":
                view[side] = self.region
        return view

    # The operators' side ---------------------------------------------------------------------

    async def due(self, who: Principal, until_ms: int = 0) -> list[dict[str, Any]]:
        """Per peer, the agreed statements no transfer holds yet, their net and who pays it:
        what ``record`` would settle."""
        require_operator(who)
        own = self.region

        def due_txn(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            out = []
            for peer in store.unsettled_peers(conn, own):
                covered = _covered(store.open_statements(conn, own, peer, until_ms))
                if not covered:
                    continue
                net = rules.owed_by(own, covered)
                out.append(
                    {
                        "peer": peer,
                        "payer": own if net >= 0 else peer,
                        "payee": peer if net >= 0 else own,
                        "amount_fen": abs(net),
                        "netting_id": rules.covering_id(covered),
                        "statements": [
                            {
                                "issuer": c.issuer,
                                "acquirer": c.acquirer,
                                "window": c.window,
                                "total_fen": c.total_fen,
                                "digest": c.digest,
                            }
                            for c in covered
                        ],
                    }
                )
            return out

        return await self._db.read("transfers_due", due_txn)

    async def record(
        self,
        who: Principal,
        peer: str,
        amount_fen: int,
        value_date: str,
        reference: str,
        until_ms: int = 0,
    ) -> dict[str, Any]:
        """Record the transfer this city made to ``peer`` and advise it (TRANSFER_ADVICE)."""
        require_operator(who)
        if not self._is_peer(peer):
            raise errors.PeerNotFound(f"{peer} is not a peer of this node")
        now = self._clock.now_ms()
        day = checked_value_date(value_date, dt.datetime.fromtimestamp(now / 1000, CST).date())
        reference = bank_reference(reference)
        own = self.region

        def txn(conn: sqlite3.Connection) -> tuple[Row, dict[str, Any]]:
            covered = _covered(store.open_statements(conn, own, peer, until_ms))
            if not covered:
                raise errors.NothingToSettle(
                    f"no agreed statement with {peer} is left to settle"
                    + (" before the cut-off" if until_ms else "")
                )
            if len(covered) > rules.MAX_STATEMENTS:
                raise errors.InvalidRequest(
                    f"{len(covered)} statements with {peer} are due, and one transfer settles "
                    f"at most {rules.MAX_STATEMENTS}: settle them in parts with until"
                )
            net = rules.owed_by(own, covered)
            if net < 0:
                raise errors.NotPayer(
                    f"on the {len(covered)} statements left to settle, {peer} owes this city "
                    f"{-net} fen net: {peer} sends the transfer advice"
                )
            if amount_fen != net:
                raise errors.AmountMismatch(
                    f"amount_fen: {amount_fen}, but on the {len(covered)} statements left to "
                    f"settle this city owes {peer} {net} fen net"
                )
            earlier = store.reference_used(conn, peer, "out", reference)
            if earlier is not None:
                raise errors.DuplicateReference(
                    f"reference: {reference} was already recorded for a transfer to {peer} "
                    f"({earlier}); a transfer is recorded once"
                )
            transfer_id = f"ct_{secrets.token_hex(12)}"
            advice = Advice(
                transfer_id, own, peer, net, day, reference, rules.covering_id(covered), covered
            )
            rules.check_advice(advice)
            message_id = new_id("m")
            row = self._writer.advice_txn(conn, advice, message_id, now)
            store.put_transfer(
                conn,
                id=transfer_id,
                peer=peer,
                direction="out",
                amount_fen=net,
                value_date=day,
                reference=reference,
                netting_id=advice.netting_id,
                state=rules.ADVISED,
                advice=bytes(row["payload"]),
                advice_message_id=message_id,
                recorded_by=who.actor,
                recorded_at=now,
                updated_at=now,
            )
            store.cover(conn, transfer_id, (c.key for c in covered))
            ledger.audit(
                conn,
                now,
                who.actor,
                "transfer.record",
                transfer_id,
                peer=peer,
                amount_fen=net,
                value_date=day,
                reference=reference,
                netting_id=advice.netting_id,
                statements=len(covered),
            )
            return row, self._view_txn(conn, transfer_id)

        row, view = await self._db.run("transfer_record", txn)
        logger.info("transfer %s to %s recorded: %d fen", view["id"], peer, amount_fen)
        crash_point("clearing.after_record")
        await self._sender.send_now(row)
        return await self.get(who, view["id"])

    async def answer(
        self, who: Principal, transfer_id: str, confirmed: bool, reason: str
    ) -> dict[str, Any]:
        """This city's operator found the advised money (confirmed) or not (disputed, with a
        reason): book or free the statements, and tell the payer (RECEIPT_CONFIRMATION)."""
        require_operator(who)
        reason = rules.reason_text(reason, required=not confirmed)
        now = self._clock.now_ms()
        own = self.region

        def txn(conn: sqlite3.Connection) -> Row:
            t = store.get_transfer(conn, transfer_id)
            if t is None:
                raise errors.TransferNotFound(f"no transfer {transfer_id}")
            if t["direction"] != "in" or t["state"] != rules.AWAITING:
                raise errors.TransferNotAwaiting(
                    f"transfer {transfer_id} is {t['direction']}going and {t['state']}: only an "
                    "advised incoming transfer awaiting confirmation can be confirmed or disputed"
                )
            peer = t["peer"]
            self._settle_txn(conn, t, confirmed, reason, who.actor, now)
            message_id = new_id("m")
            confirmation = Confirmation(
                transfer_id, peer, own, int(t["amount_fen"]), t["netting_id"], confirmed, reason
            )
            row = self._writer.confirmation_txn(conn, confirmation, message_id, now)
            store.update_transfer(
                conn,
                transfer_id,
                rules.CONFIRMED if confirmed else rules.DISPUTED,
                confirmation=bytes(row["payload"]),
                confirmation_message_id=message_id,
            )
            return row

        row = await self._db.run("transfer_answer", txn)
        logger.info("transfer %s %s", transfer_id, "confirmed" if confirmed else "disputed")
        crash_point("clearing.after_answer")
        await self._sender.send_now(row)
        return await self.get(who, transfer_id)

    def _settle_txn(
        self,
        conn: sqlite3.Connection,
        t: sqlite3.Row,
        confirmed: bool,
        reason: str,
        actor: str,
        now: int,
        **columns: Any,
    ) -> None:
        """Confirm (book the statements) or dispute (free them) a transfer awaiting that."""
        transfer_id, peer = t["id"], t["peer"]
        if confirmed:
            book_txn(conn, self.region, peer, transfer_id, store.covered(conn, transfer_id), now)
        else:
            store.release(conn, transfer_id)
        moved = store.update_transfer(
            conn,
            transfer_id,
            t["state"],
            state=rules.CONFIRMED if confirmed else rules.DISPUTED,
            reason=reason,
            answered_by=actor,
            answered_at=now,
            updated_at=now,
            **columns,
        )
        if not moved:
            raise errors.TransferConflict(f"transfer {transfer_id} changed meanwhile")
        ledger.audit(
            conn,
            now,
            actor,
            "transfer.confirm" if confirmed else "transfer.dispute",
            transfer_id,
            peer=peer,
            direction=t["direction"],
            amount_fen=t["amount_fen"],
            reason=reason,
        )

    async def transfers(
        self, who: Principal, peer: str | None = None, state: str | None = None
    ) -> list[dict[str, Any]]:
        require_operator(who)
        rows = await self._db.read("transfers", lambda c: store.transfers(c, peer, state))
        return [self._self(shown(r)) for r in rows]

    async def get(self, who: Principal, transfer_id: str) -> dict[str, Any]:
        require_operator(who)
        return await self._db.read("transfer", lambda c: self._view_txn(c, transfer_id))

    def _view_txn(self, conn: sqlite3.Connection, transfer_id: str) -> dict[str, Any]:
        t = store.get_transfer(conn, transfer_id)
        if t is None:
            raise errors.TransferNotFound(f"no transfer {transfer_id}")
        return self._self(shown(t, store.covered(conn, transfer_id)))

    # The door: what a peer sends ----------------------------------------------------------------

    async def receive(self, message: Inbound) -> bytes:
        """Apply a peer's TRANSFER_ADVICE or RECEIPT_CONFIRMATION once, and return the signed
        answer (ACK, or a REFUSAL with its code); the stored one on a resend."""
        now = self._clock.now_ms()
        origin, message_id = message.origin, message.message_id
        told: list[str] = []

        def effect_txn(conn: sqlite3.Connection) -> str:
            if isinstance(message.body, Advice):
                return self._advice_txn(conn, message, message.body, now)
            if isinstance(message.body, Confirmation):
                return self._confirmation_txn(conn, message, message.body, now)
            raise errors.Invariant("clearing receives advices and confirmations only")

        def txn(conn: sqlite3.Connection) -> bytes:
            return receive_once_txn(conn, message, effect_txn, self._sealer, now, told)

        reply = await self._db.run("transfer_receive", txn)
        kind = "TRANSFER_ADVICE" if isinstance(message.body, Advice) else "RECEIPT_CONFIRMATION"
        logger.info("accepted %s %s from %s: %s", kind, message_id, origin, told[0])
        crash_point(
            "clearing.after_advice"
            if isinstance(message.body, Advice)
            else "clearing.after_confirmation"
        )
        return reply

    def _advice_txn(
        self, conn: sqlite3.Connection, message: Inbound, advice: Advice, now: int
    ) -> str:
        origin = message.origin
        if advice.payer != origin or advice.payee != self.region:
            raise errors.InvalidRequest(
                f"payer, payee: an advice to {self.region} comes from its payer, here {origin}"
            )
        rules.check_advice(advice)
        earlier = store.get_transfer(conn, advice.transfer_id)
        if earlier is not None:
            if earlier["direction"] == "in" and bytes(earlier["advice"]) == message.payload:
                return f"transfer {advice.transfer_id} already advised"
            raise errors.TransferConflict(
                f"transfer_id: {advice.transfer_id} was already advised with other content"
            )
        for c in advice.statements:
            st = statements.get_statement(conn, c.issuer, c.acquirer, c.window)
            if (
                st is None
                or st["state"] != "agreed"
                or (int(st["total_fen"]), st["digest"]) != (c.total_fen, c.digest)
            ):
                raise errors.StatementNotAgreed(
                    f"statements: {c.issuer}/{c.acquirer}/{c.window} is not agreed here with "
                    f"total {c.total_fen} and that digest"
                )
        held = store.holders(conn, (c.key for c in advice.statements))
        if held:
            (issuer, acquirer, window), other = next(iter(held.items()))
            raise errors.StatementCovered(
                f"statements: {issuer}/{acquirer}/{window} is settled or being settled by "
                f"transfer {other}"
            )
        earlier_id = store.reference_used(conn, origin, "in", advice.reference)
        if earlier_id is not None:
            raise errors.DuplicateReference(
                f"reference: {advice.reference} was already advised by {origin} ({earlier_id})"
            )
        store.put_transfer(
            conn,
            id=advice.transfer_id,
            peer=origin,
            direction="in",
            amount_fen=advice.amount_fen,
            value_date=advice.value_date,
            reference=advice.reference,
            netting_id=advice.netting_id,
            state=rules.AWAITING,
            advice=message.payload,
            advice_message_id=f"{origin}:{message.message_id}",
            advice_envelope=message.envelope,
            recorded_by=f"peer:{origin}",
            recorded_at=now,
            updated_at=now,
        )
        store.cover(conn, advice.transfer_id, (c.key for c in advice.statements))
        ledger.audit(
            conn,
            now,
            f"peer:{origin}",
            "transfer.advice",
            advice.transfer_id,
            peer=origin,
            amount_fen=advice.amount_fen,
            value_date=advice.value_date,
            reference=advice.reference,
            netting_id=advice.netting_id,
            statements=len(advice.statements),
        )
        return f"transfer {advice.transfer_id} of {advice.amount_fen} fen awaits confirmation"

    def _confirmation_txn(
        self, conn: sqlite3.Connection, message: Inbound, c: Confirmation, now: int
    ) -> str:
        origin = message.origin
        rules.check_confirmation(c)
        t = store.get_transfer(conn, c.transfer_id)
        if t is None or t["direction"] != "out" or t["peer"] != origin:
            raise errors.TransferNotFound(f"no transfer {c.transfer_id} from here to {origin}")
        if (c.payer, c.payee, c.amount_fen, c.netting_id) != (
            self.region,
            origin,
            int(t["amount_fen"]),
            t["netting_id"],
        ):
            raise errors.TransferConflict(
                f"the confirmation of {c.transfer_id} does not name its payer, payee, amount "
                "and netting id as advised"
            )
        outcome = rules.CONFIRMED if c.confirmed else rules.DISPUTED
        if t["state"] in (rules.CONFIRMED, rules.DISPUTED, rules.REFUSED):
            if t["state"] == outcome:
                return f"transfer {c.transfer_id} already {outcome}"
            raise errors.TransferConflict(f"transfer {c.transfer_id} is already {t['state']}")
        self._settle_txn(
            conn,
            t,
            c.confirmed,
            c.reason,
            f"peer:{origin}",
            now,
            confirmation=message.payload,
            confirmation_message_id=f"{origin}:{message.message_id}",
            confirmation_envelope=message.envelope,
        )
        return f"transfer {c.transfer_id} {outcome}"

    # The outbox: the peer's answer to what this node sent -------------------------------------

    async def apply(
        self, row: Row, request_type: str, answer: Acknowledged | Refusal, evidence: Evidence
    ) -> Applied:
        """Apply the peer's signed answer to this node's advice or confirmation, exactly once
        (the outbox row is marked done in the same transaction)."""
        now = self._clock.now_ms()
        message_id = row["message_id"]

        def effect_txn(conn: sqlite3.Connection) -> str:
            t = store.by_message(conn, message_id)
            if t is None:  # cannot happen: both commit together
                raise errors.Invariant(f"outbox message {message_id} belongs to no transfer")
            advice = t["advice_message_id"] == message_id
            store.keep_reply(conn, t["id"], advice, evidence.envelope)
            if isinstance(answer, Acknowledged):
                if advice:
                    store.update_transfer(
                        conn, t["id"], rules.ADVISED, state=rules.AWAITING, updated_at=now
                    )
                return f"{request_type} of {t['id']} acknowledged"
            if advice and t["state"] == rules.ADVISED:
                store.release(conn, t["id"])
                store.update_transfer(
                    conn,
                    t["id"],
                    rules.ADVISED,
                    state=rules.REFUSED,
                    code=answer.code,
                    reason=answer.message[:REASON_MAX],
                    answered_by=f"peer:{row['peer']}",
                    answered_at=now,
                    updated_at=now,
                )
            ledger.audit(
                conn,
                now,
                f"peer:{row['peer']}",
                f"transfer.{request_type}_refused",
                t["id"],
                code=answer.code,
                message=answer.message,
            )
            return f"{request_type} of {t['id']} refused: {answer.code}"

        return await apply_answer_once(
            self._db, "transfer_apply", row, answer, effect_txn, now, logging.ERROR
        )
