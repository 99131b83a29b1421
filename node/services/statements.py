"""Settlement between cities: pair statements, countersignature, reconciliation, disputes.

For each of the issuer's windows in which this node (the acquirer) recorded captures of the
issuer's vouchers, the acquirer sends the issuer a statement of what it is owed: issuer,
acquirer, window, count, total and a SHA-256 digest over the sorted records (``statement
lines``), as canonical JSON signed by the acquirer (tag ``suanli/statement/v1``), with the
records themselves when they fit in one message (``statement_inline_records``; a window can
hold millions, and agreement needs only the digest). The issuer answers ``window_open`` until
it has closed that window, then compares with its own books. Equal: it countersigns the same
bytes and both keep the statement with both signatures; any member can verify it with the two
cities' cards. Unequal: the issuer answers with its own statement (and records, if they fit)
and both open a **dispute**.

Before sending, the acquirer reconciles what it can automatically: it never sends while a
message to that issuer is still in its outbox (an unknown outcome resolves itself by resending,
so a capture in flight is never reported missing). What still differs then is a real
disagreement: both operators see it as a dispute with the evidence: each side's records for
the differing holds and the issuer's signed receipts the acquirer holds for them. It is never
settled silently; the acquirer re-sends with backoff, so a dispute closes itself once the
books are corrected, and the statement is then countersigned.

A window is **settled** at the issuer when every acquirer with records in it has a
countersigned statement.

Three services, all knowing no protobuf: ``Settler`` (the acquirer's side), ``StatementDesk``
(the issuer's) here, and ``Netting`` (any member, ``node/services/netting.py``). They reach peers through one port,
``StatementLink``, which the federation implements (``federation/wire.py``); the federation's
servicer hands the desk the claims it received and seals the desk's answers.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from node import errors
from node.clock import Clock
from node.config import MAX_STATEMENTS_PAGE
from node.domain.model import Peer, StatementState
from node.domain.statements import (
    STATEMENT_TAG,
    SUMMARY_KEYS,
    Record,
    SignedStatement,
    StatementAnswer,
    StatementClaim,
    Tally,
    differences,
    parsed,
    statement_bytes,
    summary_of,
    tally,
)
from node.domain.windows import window_bounds
from node.faults import crash_point
from node.keys import NodeKey, verify
from node.services import ownkeys
from node.services.directory import Directory
from node.store import ledger, remote_holds
from node.store import outbox as outbox_rows
from node.store import settlement as store
from node.store.engine import Books

logger = logging.getLogger(__name__)


class NoAnswer(Exception):
    """A peer gave no answer this node can use: unreachable, refused at its door, or an answer
    that does not verify or parse. Statements and netting try again later."""


class StatementLink(Protocol):
    """What the statement services need from the federation (``federation/wire.py``)."""

    async def send(self, issuer: str, claim: StatementClaim) -> tuple[StatementAnswer, bytes]:
        """Send a statement; the issuer's verified answer, and its signed envelope as received
        (evidence). Raises NoAnswer."""
        ...

    async def page(
        self, region: str, until_ms: int, after: str, limit: int
    ) -> tuple[list[SignedStatement], str]:
        """One page of the countersigned statements ``region`` is party to, and the cursor of
        the next page ("" at the end). Raises NoAnswer."""
        ...


async def tally_rows(db: Books, sql: str, params: Sequence[Any], keep: int) -> Tally:
    """The statement of a window's records as ``sql`` reads them (in record order), in chunks
    on the event loop (``Books.scan``)."""
    counted = Tally(keep)
    async with contextlib.aclosing(db.scan("statement_records", sql, params)) as chunks:
        async for rows in chunks:
            counted.add(rows)
    return counted


def key_of(peer: Peer | None, key_id: str) -> bytes | None:
    if peer is None:
        return None
    key = next((k for k in peer.keys if k.key_id == key_id and not k.revoked), None)
    return key.public_key if key else None


def signed_row(row: sqlite3.Row) -> SignedStatement:
    return SignedStatement(
        statement=bytes(row["statement"]),
        acquirer_signature=bytes(row["acquirer_signature"]),
        acquirer_key_id=row["acquirer_key_id"],
        issuer_signature=bytes(row["issuer_signature"]),
        issuer_key_id=row["issuer_key_id"],
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class Settler:
    """The acquirer side: send statements, keep countersignatures, open disputes."""

    def __init__(
        self,
        db: Books,
        clock: Clock,
        region: str,
        key: NodeKey,
        directory: Directory,
        link: StatementLink,
        recheck_seconds: float,
        retry_seconds: float = 5.0,
        inline_records: int = 2_000,
    ) -> None:
        self._db = db
        self._clock = clock
        self.region = region
        self._key = key
        self._directory = directory
        self._link = link
        self._retry_ms = int(retry_seconds * 1000)
        self._recheck_ms = int(recheck_seconds * 1000)
        self._inline = inline_records

    async def tick(self) -> int:
        """Send every statement that is due; returns how many were countersigned."""
        now = self._clock.now_ms()

        def due_txn(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            out: list[tuple[str, str]] = []
            busy = outbox_rows.redemptions_pending(conn)  # transfer messages do not count
            for issuer, window_id in store.acquirer_windows(conn, self.region):
                if issuer in busy:
                    continue  # an answer is still outstanding: reconcile once it is in
                row = store.get_statement(conn, issuer, self.region, window_id)
                if row is not None and row["next_attempt_at"] > now:
                    continue
                out.append((issuer, window_id))
            return out

        agreed = 0
        for issuer, window_id in await self._db.read("statements_due", due_txn):
            peer = self._directory.get(issuer)
            if peer is None:
                continue  # no longer a peer: nothing to ask
            ours = await tally_rows(
                self._db, store.ACQUIRER_RECORDS, (issuer, window_id), self._inline
            )
            if await self._send(peer, window_id, ours, now):
                agreed += 1
        return agreed

    async def _send(self, peer: Peer, window_id: str, ours: Tally, now: int) -> bool:
        issuer = peer.region
        summary = ours.summary()
        body = statement_bytes(issuer, self.region, window_id, summary)
        signature = self._key.sign(STATEMENT_TAG, body)
        claim = StatementClaim(body, signature, self._key.key_id, ours.records)
        base = {
            "issuer": issuer,
            "acquirer": self.region,
            "window_id": window_id,
            "window_end": window_bounds(window_id)[1],
            **summary,
            "statement": body,
            "acquirer_signature": signature,
            "acquirer_key_id": self._key.key_id,
            "updated_at": now,
        }
        try:
            answer, raw = await self._link.send(issuer, claim)
        except NoAnswer as exc:
            logger.info("statement %s/%s not answered yet: %s", issuer, window_id, exc)
            await self._db.run("statement_retry", lambda c: self._later_txn(c, base, "sent", now))
            return False
        crash_point("acquirer.before_statement_store")
        if answer.agreed:
            public = key_of(peer, answer.issuer_key_id)
            if public is None or not verify(public, STATEMENT_TAG, body, answer.issuer_signature):
                logger.error(
                    "%s countersigned %s with a signature that does not verify", issuer, window_id
                )
                await self._db.run(
                    "statement_retry", lambda c: self._later_txn(c, base, "sent", now)
                )
                return False
            await self._db.run("statement_agreed", lambda c: self._agreed_txn(c, base, answer, now))
            logger.info("statement %s→%s %s countersigned", issuer, self.region, window_id)
            return True
        if answer.code == "statement_already_agreed":
            await self._db.run(
                "statement_conflict",
                lambda c: self._conflict_txn(c, peer, base, answer.agreed_statement, raw, now),
            )
            return False
        if answer.code == "window_open":
            # Ask again when the issuer closes it by time, or sooner in case it closes early.
            at = min(answer.closes_at_ms or now, now + self._recheck_ms)
            await self._db.run(
                "statement_retry", lambda c: self._later_txn(c, base, "sent", now, at)
            )
            return False
        await self._db.run(
            "statement_dispute",
            lambda c: self._dispute_txn(c, base, ours.records, answer, raw, now),
        )
        logger.warning("statement %s→%s %s disputed", issuer, self.region, window_id)
        return False

    def _later_txn(
        self,
        conn: sqlite3.Connection,
        base: dict[str, Any],
        state: StatementState,
        now: int,
        at: int | None = None,
    ) -> None:
        """Schedule the next attempt: at ``at`` when the issuer answered (its window is open),
        else after a backoff that doubles with each attempt since it last answered. (Counting
        every attempt instead, the 10-minute rechecks of an open window made the first failure
        after them wait the full backoff: a peer back from a restart went unasked for minutes.)"""
        row = store.get_statement(conn, base["issuer"], base["acquirer"], base["window_id"])
        attempts = 0 if at is not None else (row["attempts"] if row else 0) + 1
        if row is not None and row["state"] == "disputed":
            state = "disputed"
        if at is None:
            at = now + min(self._retry_ms * 2 ** min(attempts - 1, 7), 600_000)
        store.put_statement(conn, **base, state=state, attempts=attempts, next_attempt_at=at)

    def _agreed_txn(
        self, conn: sqlite3.Connection, base: dict[str, Any], answer: StatementAnswer, now: int
    ) -> None:
        store.put_statement(
            conn,
            **base,
            issuer_signature=answer.issuer_signature,
            issuer_key_id=answer.issuer_key_id,
            state="agreed",
            next_attempt_at=0,
        )
        store.resolve_disputes(conn, base["issuer"], base["acquirer"], base["window_id"], now)
        ledger.audit(
            conn,
            now,
            f"peer:{base['issuer']}",
            "statement.agreed",
            base["window_id"],
            issuer=base["issuer"],
            total_fen=base["total_fen"],
            count=base["count"],
        )

    def _conflict_txn(
        self,
        conn: sqlite3.Connection,
        peer: Peer,
        base: dict[str, Any],
        agreed: SignedStatement | None,
        raw: bytes,
        now: int,
    ) -> None:
        """The issuer holds a countersigned statement for this window and ours now differs
        (books restored from an older backup, say). A statement both sides signed stands: if
        the one it sends verifies with its key and one of ours and names this pair and window,
        keep it as agreed; either way, record what happened for the operator."""
        agreed = agreed or SignedStatement(b"", b"", "", b"", "")
        summary = parsed(agreed.statement)
        own = {k.key_id: k.public_key for k in ownkeys.load_txn(conn, self._key)}
        ours = own.get(agreed.acquirer_key_id)
        issuer_key = key_of(peer, agreed.issuer_key_id)
        valid = (
            summary is not None
            and summary.get("issuer") == base["issuer"]
            and summary.get("acquirer") == base["acquirer"]
            and summary.get("window") == base["window_id"]
            and ours is not None
            and issuer_key is not None
            and verify(ours, STATEMENT_TAG, agreed.statement, agreed.acquirer_signature)
            and verify(issuer_key, STATEMENT_TAG, agreed.statement, agreed.issuer_signature)
        )
        store.record_conflict(
            conn,
            base["issuer"],
            base["acquirer"],
            base["window_id"],
            {
                "side": "acquirer",
                "agreed": {k: summary.get(k) for k in SUMMARY_KEYS} if summary else None,
                "ours": {k: base[k] for k in SUMMARY_KEYS},
                "agreed_statement_verifies": valid,
                "issuer_reply": _b64(raw),
            },
            now,
        )
        if valid and summary is not None:
            store.put_statement(
                conn,
                **{
                    **base,
                    "count": summary["count"],
                    "total_fen": summary["total_fen"],
                    "digest": summary["digest"],
                    "statement": agreed.statement,
                    "acquirer_signature": agreed.acquirer_signature,
                    "acquirer_key_id": agreed.acquirer_key_id,
                },
                issuer_signature=agreed.issuer_signature,
                issuer_key_id=agreed.issuer_key_id,
                state="agreed",
                next_attempt_at=0,
            )
            store.resolve_disputes(conn, base["issuer"], base["acquirer"], base["window_id"], now)
        else:
            self._later_txn(conn, base, "disputed", now)
        logger.error(
            "%s holds an agreed statement for %s that differs from these books (%s); "
            "see suanli settle disputes",
            base["issuer"],
            base["window_id"],
            "kept as agreed" if valid else "it does not verify",
        )

    def _dispute_txn(
        self,
        conn: sqlite3.Connection,
        base: dict[str, Any],
        ours: Sequence[Record] | None,
        answer: StatementAnswer,
        raw: bytes,
        now: int,
    ) -> None:
        # Too many records on either side to exchange: the counts, totals and digests say that
        # the books differ, not where; each side's `suanli` export of the window says where.
        theirs = answer.issuer_records
        omitted = ours is None or theirs is None
        differing = differences(ours, theirs) if ours is not None and theirs is not None else []
        for item in differing:
            item["receipts"] = [
                _b64(envelope)
                for envelope in remote_holds.receipts_for(conn, item["issuer_hold_id"])
            ]
        evidence = {
            "ours": {k: base[k] for k in SUMMARY_KEYS},
            "theirs": tally(theirs) if theirs is not None else summary_of(answer.issuer_statement),
            "differences": differing,
            "records_omitted": omitted,
            "issuer_reply": _b64(raw),
        }
        store.open_dispute(conn, base["issuer"], base["acquirer"], base["window_id"], evidence, now)
        self._later_txn(conn, base, "disputed", now)
        ledger.audit(
            conn,
            now,
            "system:settlement",
            "statement.disputed",
            base["window_id"],
            issuer=base["issuer"],
            differences=len(differing),
        )


class StatementDesk:
    """The issuer side: compare an acquirer's statement with the books; countersign or dispute."""

    def __init__(
        self,
        db: Books,
        clock: Clock,
        region: str,
        key: NodeKey,
        directory: Directory,
        grace_ms: Callable[[], int],
        inline_records: int = 2_000,
    ) -> None:
        self._db = db
        self._clock = clock
        self.region = region
        self._key = key
        self._directory = directory
        self._grace_ms = grace_ms
        self._inline = inline_records

    async def window_closed(self, origin: str, window_id: str) -> None:
        """WINDOW_CLOSED: ``origin``, an issuer, closed its ``window_id``. This node's
        statement for it goes at the next sweep instead of at its next recheck."""
        try:
            window_bounds(window_id)
        except ValueError:
            raise errors.MalformedMessage(
                f"window: {window_id[:40]!r} is not a window name"
            ) from None
        await self._db.run(
            "statement_due",
            lambda c: store.statement_due_now(c, origin, self.region, window_id),
        )

    async def compare(self, origin: str, claim: StatementClaim, raw: bytes) -> StatementAnswer:
        """Answer ``origin``'s statement (``raw``: its signed envelope, kept as evidence)."""
        now = self._clock.now_ms()
        claimed = parsed(claim.statement)
        if claimed is None:
            raise errors.MalformedMessage("the statement does not parse")
        public = key_of(self._directory.get(origin), claim.acquirer_key_id)
        if public is None or not verify(
            public, STATEMENT_TAG, claim.statement, claim.acquirer_signature
        ):
            raise errors.BadSignature("the statement is not signed by the acquirer")
        window_id = str(claimed.get("window", ""))
        if claimed.get("issuer") != self.region or claimed.get("acquirer") != origin:
            raise errors.MalformedMessage("the statement names other parties")
        try:
            window_end = window_bounds(window_id)[1]
        except ValueError:
            raise errors.MalformedMessage(f"not a window: {window_id!r}") from None
        claimed_summary = summary_of(claim.statement)
        theirs = claim.records
        if theirs is None:
            if claimed_summary is None or not (
                isinstance(claimed_summary["count"], int)
                and isinstance(claimed_summary["total_fen"], int)
                and isinstance(claimed_summary["digest"], str)
            ):
                raise errors.MalformedMessage("the statement has no count, total or digest")
        elif statement_bytes(self.region, origin, window_id, tally(theirs)) != claim.statement:
            raise errors.MalformedMessage(
                "the records do not match the statement's count, total or digest"
            )

        if not await self._db.read("statement_window", lambda c: store.is_closed(c, window_id)):
            return StatementAnswer(
                agreed=False, code="window_open", closes_at_ms=window_end + self._grace_ms()
            )
        # A closed window's records never change (captures go to the open window), so they are
        # read outside the write transaction, in chunks, however many there are.
        ours = await tally_rows(self._db, store.ISSUER_RECORDS, (origin, window_id), self._inline)
        summary = ours.summary()
        statement = statement_bytes(self.region, origin, window_id, summary)

        def compare_txn(conn: sqlite3.Connection) -> StatementAnswer:
            base = {
                "issuer": self.region,
                "acquirer": origin,
                "window_id": window_id,
                "window_end": window_end,
                **summary,
                "statement": statement,
                "updated_at": now,
            }
            agreed = store.get_statement(conn, self.region, origin, window_id)
            if agreed is not None and agreed["state"] == "agreed":
                return self._already_agreed_txn(conn, agreed, origin, claim, raw, now)
            # Equal statement bytes: same parties, window, count, total and SHA-256 digest over
            # the sorted records, so the same records, whether or not they were sent.
            if statement == claim.statement:
                countersignature = self._key.sign(STATEMENT_TAG, claim.statement)
                store.put_statement(
                    conn,
                    **base,
                    acquirer_signature=claim.acquirer_signature,
                    acquirer_key_id=claim.acquirer_key_id,
                    issuer_signature=countersignature,
                    issuer_key_id=self._key.key_id,
                    state="agreed",
                )
                store.resolve_disputes(conn, self.region, origin, window_id, now)
                ledger.audit(
                    conn,
                    now,
                    f"peer:{origin}",
                    "statement.countersigned",
                    window_id,
                    acquirer=origin,
                    total_fen=base["total_fen"],
                    count=base["count"],
                )
                self._maybe_settled_txn(conn, window_id, now)
                return StatementAnswer(
                    agreed=True, issuer_signature=countersignature, issuer_key_id=self._key.key_id
                )
            store.put_statement(conn, **base, state="disputed")
            evidence = {
                "ours": {k: base[k] for k in SUMMARY_KEYS},
                "theirs": claimed_summary,
                "differences": (
                    differences(theirs, ours.records)
                    if theirs is not None and ours.records is not None
                    else []
                ),
                "records_omitted": theirs is None or ours.records is None,
                "acquirer_statement": _b64(raw),
            }
            store.open_dispute(conn, self.region, origin, window_id, evidence, now)
            ledger.audit(
                conn, now, f"peer:{origin}", "statement.disputed", window_id, acquirer=origin
            )
            return StatementAnswer(
                agreed=False,
                code="statement_mismatch",
                issuer_records=ours.records,
                issuer_statement=statement,
            )

        return await self._db.run("statement_compare", compare_txn)

    def _already_agreed_txn(
        self,
        conn: sqlite3.Connection,
        agreed: sqlite3.Row,
        origin: str,
        claim: StatementClaim,
        raw: bytes,
        now: int,
    ) -> StatementAnswer:
        """A statement for a window whose statement both sides have signed. The same bytes
        again (an acquirer that lost the answer) get the stored countersignature; any other
        statement is refused and kept as evidence: an agreed statement is final, and a
        correction after agreement would be a new, separately signed adjustment."""
        if bytes(agreed["statement"]) == claim.statement:
            return StatementAnswer(
                agreed=True,
                issuer_signature=bytes(agreed["issuer_signature"]),
                issuer_key_id=agreed["issuer_key_id"],
            )
        window_id = agreed["window_id"]
        store.record_conflict(
            conn,
            self.region,
            origin,
            window_id,
            {
                "side": "issuer",
                "agreed": {k: agreed[k] for k in SUMMARY_KEYS},
                "received": summary_of(claim.statement),
                "received_statement": _b64(raw),
            },
            now,
        )
        ledger.audit(
            conn,
            now,
            f"peer:{origin}",
            "statement.conflict_after_agreement",
            window_id,
            acquirer=origin,
        )
        logger.error(
            "%s sent a statement for %s that differs from the one both sides countersigned; "
            "the agreed statement stands (suanli settle disputes)",
            origin,
            window_id,
        )
        return StatementAnswer(
            agreed=False, code="statement_already_agreed", agreed_statement=signed_row(agreed)
        )

    def _maybe_settled_txn(self, conn: sqlite3.Connection, window_id: str, now: int) -> None:
        acquirers = store.acquirers_in_window(conn, window_id, self.region)
        if acquirers <= store.agreed_acquirers(conn, self.region, window_id):
            store.settle_window(conn, window_id, now)

    async def agreed(
        self, until_ms: int, after: str, limit: int
    ) -> tuple[list[SignedStatement], str]:
        """STATEMENTS: a page of the countersigned statements this node is party to (for
        netting), and the cursor of the next page ("" at the end)."""
        cursor = _cursor(after)
        # limit 0: everything in one reply, as a peer that does not page asks
        page = min(limit, MAX_STATEMENTS_PAGE) if limit else -1
        rows = await self._db.read(
            "statements_agreed",
            lambda c: store.agreed_statements(c, until_ms, cursor, page + 1 if page > 0 else -1),
        )
        more = 0 < page < len(rows)
        if more:
            rows = rows[:page]
        last = rows[-1] if rows else None
        following = (
            json.dumps([last["issuer"], last["acquirer"], last["window_id"]])
            if more and last is not None
            else ""
        )
        return [signed_row(r) for r in rows], following


def _cursor(after: str) -> tuple[str, str, str]:
    """A STATEMENTS request's ``after``: empty, or a ``next`` this node sent (its last
    statement's issuer, acquirer and window, as a JSON array)."""
    if not after:
        return ("", "", "")
    try:
        key = json.loads(after)
    except ValueError:
        key = None
    if not (isinstance(key, list) and len(key) == 3 and all(isinstance(k, str) for k in key)):
        raise errors.MalformedMessage("after: not a cursor this node sent")
    return (key[0], key[1], key[2])
