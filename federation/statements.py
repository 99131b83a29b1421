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
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from google.protobuf.message import DecodeError

from federation.client import PeerRefused, PeerUnreachable
from federation.envelope import Opened, seal
from federation.proto.v1 import federation_pb2 as pb
from federation.wire import Wire
from node import errors
from node.clock import Clock
from node.config import MAX_STATEMENTS_PAGE
from node.domain.model import Peer
from node.domain.netting import positions, transfers
from node.domain.windows import window_bounds
from node.faults import crash_point
from node.keys import NodeKey, canonical_json, verify
from node.services import ownkeys
from node.services.common import Principal, new_id, require_operator
from node.services.directory import Directory
from node.store import ledger, remote_holds
from node.store import outbox as outbox_rows
from node.store import settlement as store
from node.store.db import Database

logger = logging.getLogger(__name__)

STATEMENT_TAG = b"suanli/statement/v1\x00"
Record = tuple[str, str, str, int]  # issuer hold id, provider id, order id, captured fen


class Tally:
    """What a statement says of its records: how many, their total, and the SHA-256 digest of
    their lines (``hold|provider|order|fen\n`` each, in record order). Records are fed in
    record order, in any number of chunks, so a window of millions never sits in memory; the
    records themselves are kept while there are at most ``keep`` (to send inline)."""

    def __init__(self, keep: int = 0) -> None:
        self.count = 0
        self.total_fen = 0
        self.records: list[Record] | None = []
        self._keep = keep
        self._sha = hashlib.sha256()
        self._last: Record | None = None

    def add(self, records: Sequence[Record]) -> None:
        last = self._last
        for record in records:
            if last is not None and record < last:
                raise ValueError("statement records must come in record order")
            last = record
        self._last = last
        self.count += len(records)
        self.total_fen += sum(r[3] for r in records)
        self._sha.update("".join(f"{h}|{p}|{o}|{fen}\n" for h, p, o, fen in records).encode())
        if self.records is not None:
            self.records = self.records + list(records) if self.count <= self._keep else None

    def summary(self) -> dict[str, Any]:
        return {"count": self.count, "total_fen": self.total_fen, "digest": self._sha.hexdigest()}


def tally(records: Iterable[Record]) -> dict[str, Any]:
    """The summary of records in any order (a statement's records that fit in a message)."""
    counted = Tally()
    counted.add(sorted(records))
    return counted.summary()


async def tally_rows(db: Database, sql: str, params: Sequence[Any], keep: int) -> Tally:
    """The statement of a window's records as ``sql`` reads them (in record order), in chunks
    on the event loop (``Database.scan``)."""
    counted = Tally(keep)
    async with contextlib.aclosing(db.scan("statement_records", sql, params)) as chunks:
        async for rows in chunks:
            counted.add(rows)
    return counted


def statement_bytes(issuer: str, acquirer: str, window_id: str, summary: dict[str, Any]) -> bytes:
    """The signed form of a statement; ``summary``: a ``Tally``'s count, total and digest."""
    return canonical_json(
        {
            "type": "suanli.statement.v1",
            "issuer": issuer,
            "acquirer": acquirer,
            "window": window_id,
            "count": summary["count"],
            "total_fen": summary["total_fen"],
            "digest": summary["digest"],
        }
    )


def _records(msgs: Iterable[pb.StatementRecord]) -> list[Record]:
    return sorted((m.issuer_hold_id, m.provider_id, m.order_id, m.captured_fen) for m in msgs)


def _pb_records(records: list[Record]) -> list[pb.StatementRecord]:
    return [
        pb.StatementRecord(issuer_hold_id=h, provider_id=p, order_id=o, captured_fen=f)
        for h, p, o, f in records
    ]


def _key_of(peer: Peer | None, key_id: str) -> bytes | None:
    if peer is None:
        return None
    key = next((k for k in peer.keys if k.key_id == key_id and not k.revoked), None)
    return key.public_key if key else None


def _differences(ours: list[Record], theirs: list[Record]) -> list[dict[str, Any]]:
    mine = {r[0]: r for r in ours}
    other = {r[0]: r for r in theirs}
    out = []
    for hold_id in sorted(set(mine) | set(other)):
        if mine.get(hold_id) != other.get(hold_id):
            out.append(
                {
                    "issuer_hold_id": hold_id,
                    "acquirer": _rec(mine.get(hold_id)),
                    "issuer": _rec(other.get(hold_id)),
                }
            )
    return out


def _parsed(statement: bytes) -> dict[str, Any] | None:
    """A statement's canonical JSON as a dict (None if absent or unreadable)."""
    try:
        claimed = json.loads(statement) if statement else None
    except ValueError:
        return None
    return claimed if isinstance(claimed, dict) else None


def _summary(statement: bytes) -> dict[str, Any] | None:
    """Count, total and digest of a statement (None if absent or unreadable)."""
    claimed = _parsed(statement)
    return (
        None if claimed is None else {k: claimed.get(k) for k in ("count", "total_fen", "digest")}
    )


def _rec(r: Record | None) -> dict[str, Any] | None:
    return None if r is None else {"provider_id": r[1], "order_id": r[2], "captured_fen": r[3]}


class Settler:
    """The acquirer side: send statements, keep countersignatures, open disputes."""

    def __init__(
        self,
        db: Database,
        wire: Wire,
        recheck_seconds: float,
        retry_seconds: float = 5.0,
        inline_records: int = 2_000,
    ) -> None:
        self._db = db
        self._wire = wire
        self._clock = wire.clock
        self.region = wire.region
        self._key = wire.key
        self._retry_ms = int(retry_seconds * 1000)
        self._recheck_ms = int(recheck_seconds * 1000)
        self._inline = inline_records

    async def tick(self) -> int:
        """Send every statement that is due; returns how many were countersigned."""
        now = self._clock.now_ms()

        def due(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            out: list[tuple[str, str]] = []
            busy = {p for p, _, _ in outbox_rows.outbox_depth(conn)}
            for issuer, window_id in store.acquirer_windows(conn, self.region):
                if issuer in busy:
                    continue  # an answer is still outstanding: reconcile once it is in
                row = store.get_statement(conn, issuer, self.region, window_id)
                if row is not None and row["next_attempt_at"] > now:
                    continue
                out.append((issuer, window_id))
            return out

        agreed = 0
        for issuer, window_id in await self._db.read("statements_due", due):
            peer = self._wire.directory.get(issuer)
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
        request = pb.StatementRequest(
            statement=body,
            acquirer_signature=signature,
            acquirer_key_id=self._key.key_id,
            records=_pb_records(ours.records) if ours.records is not None else [],
            records_omitted=ours.records is None,
        ).SerializeToString(deterministic=True)
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
            opened = await self._wire.ask(issuer, pb.STATEMENT, request, pb.STATEMENT_REPLY)
            reply = pb.StatementReply.FromString(opened.payload)
        except (PeerUnreachable, PeerRefused, errors.SuanliError, DecodeError) as exc:
            logger.info("statement %s/%s not answered yet: %s", issuer, window_id, exc)
            await self._db.run("statement_retry", lambda c: self._later(c, base, "sent", now))
            return False
        crash_point("acquirer.before_statement_store")
        if reply.agreed:
            public = _key_of(peer, reply.issuer_key_id)
            if public is None or not verify(public, STATEMENT_TAG, body, reply.issuer_signature):
                logger.error(
                    "%s countersigned %s with a signature that does not verify", issuer, window_id
                )
                await self._db.run("statement_retry", lambda c: self._later(c, base, "sent", now))
                return False
            await self._db.run("statement_agreed", lambda c: self._agreed(c, base, reply, now))
            logger.info("statement %s→%s %s countersigned", issuer, self.region, window_id)
            return True
        if reply.code == "statement_already_agreed":
            await self._db.run(
                "statement_conflict",
                lambda c: self._conflict(c, peer, base, reply.agreed_statement, opened, now),
            )
            return False
        if reply.code == "window_open":
            # Ask again when the issuer closes it by time, or sooner in case it closes early.
            at = min(reply.closes_at_ms or now, now + self._recheck_ms)
            await self._db.run("statement_retry", lambda c: self._later(c, base, "sent", now, at))
            return False
        theirs = None if reply.records_omitted else _records(reply.issuer_records)
        issuer_summary = _summary(reply.issuer_statement)
        await self._db.run(
            "statement_dispute",
            lambda c: self._dispute(c, base, ours.records, theirs, issuer_summary, opened, now),
        )
        logger.warning("statement %s→%s %s disputed", issuer, self.region, window_id)
        return False

    def _later(
        self,
        conn: sqlite3.Connection,
        base: dict[str, Any],
        state: str,
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

    def _agreed(
        self, conn: sqlite3.Connection, base: dict[str, Any], reply: pb.StatementReply, now: int
    ) -> None:
        store.put_statement(
            conn,
            **base,
            issuer_signature=reply.issuer_signature,
            issuer_key_id=reply.issuer_key_id,
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

    def _conflict(
        self,
        conn: sqlite3.Connection,
        peer: Peer,
        base: dict[str, Any],
        agreed: pb.SignedStatement,
        opened: Opened,
        now: int,
    ) -> None:
        """The issuer holds a countersigned statement for this window and ours now differs
        (books restored from an older backup, say). A statement both sides signed stands: if
        the one it sends verifies with its key and one of ours and names this pair and window,
        keep it as agreed; either way, record what happened for the operator."""
        summary = _parsed(agreed.statement)
        own = {k.key_id: k.public_key for k in ownkeys.load_txn(conn, self._key)}
        ours = own.get(agreed.acquirer_key_id)
        issuer_key = _key_of(peer, agreed.issuer_key_id)
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
                "agreed": {k: summary.get(k) for k in ("count", "total_fen", "digest")}
                if summary
                else None,
                "ours": {k: base[k] for k in ("count", "total_fen", "digest")},
                "agreed_statement_verifies": valid,
                "issuer_reply": base64.b64encode(opened.raw).decode(),
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
            self._later(conn, base, "disputed", now)
        logger.error(
            "%s holds an agreed statement for %s that differs from these books (%s); "
            "see suanli settle disputes",
            base["issuer"],
            base["window_id"],
            "kept as agreed" if valid else "it does not verify",
        )

    def _dispute(
        self,
        conn: sqlite3.Connection,
        base: dict[str, Any],
        ours: list[Record] | None,
        theirs: list[Record] | None,
        issuer_summary: dict[str, Any] | None,
        opened: Opened,
        now: int,
    ) -> None:
        # Too many records on either side to exchange: the counts, totals and digests say that
        # the books differ, not where; each side's `suanli` export of the window says where.
        omitted = ours is None or theirs is None
        differing = _differences(ours, theirs) if ours is not None and theirs is not None else []
        for item in differing:
            item["receipts"] = [
                base64.b64encode(envelope).decode()
                for envelope in remote_holds.receipts_for(conn, item["issuer_hold_id"])
            ]
        evidence = {
            "ours": {k: base[k] for k in ("count", "total_fen", "digest")},
            "theirs": tally(theirs) if theirs is not None else issuer_summary,
            "differences": differing,
            "records_omitted": omitted,
            "issuer_reply": base64.b64encode(opened.raw).decode(),
        }
        store.open_dispute(conn, base["issuer"], base["acquirer"], base["window_id"], evidence, now)
        self._later(conn, base, "disputed", now)
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
        db: Database,
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

    async def handle(self, opened: Opened) -> bytes:
        origin = opened.header.origin
        now = self._clock.now_ms()
        try:
            request = pb.StatementRequest.FromString(opened.payload)
            claimed = json.loads(request.statement)
        except (DecodeError, ValueError):
            raise errors.MalformedMessage("the statement does not parse") from None
        public = _key_of(self._directory.get(origin), request.acquirer_key_id)
        if public is None or not verify(
            public, STATEMENT_TAG, request.statement, request.acquirer_signature
        ):
            raise errors.BadSignature("the statement is not signed by the acquirer")
        window_id = str(claimed.get("window", ""))
        if claimed.get("issuer") != self.region or claimed.get("acquirer") != origin:
            raise errors.MalformedMessage("the statement names other parties")
        try:
            window_end = window_bounds(window_id)[1]
        except ValueError:
            raise errors.MalformedMessage(f"not a window: {window_id!r}") from None
        claimed_summary = _summary(request.statement)
        theirs: list[Record] | None = None
        if request.records_omitted:
            if request.records:
                raise errors.MalformedMessage("records sent and said to be omitted")
            if claimed_summary is None or not (
                isinstance(claimed_summary["count"], int)
                and isinstance(claimed_summary["total_fen"], int)
                and isinstance(claimed_summary["digest"], str)
            ):
                raise errors.MalformedMessage("the statement has no count, total or digest")
        else:
            theirs = _records(request.records)
            if statement_bytes(self.region, origin, window_id, tally(theirs)) != request.statement:
                raise errors.MalformedMessage(
                    "the records do not match the statement's count, total or digest"
                )

        if not await self._db.read("statement_window", lambda c: store.is_closed(c, window_id)):
            closes = window_end + self._grace_ms()
            reply = pb.StatementReply(agreed=False, code="window_open", closes_at_ms=closes)
            return self._sealed(opened, reply, now)
        # A closed window's records never change (captures go to the open window), so they are
        # read outside the write transaction, in chunks, however many there are.
        ours = await tally_rows(self._db, store.ISSUER_RECORDS, (origin, window_id), self._inline)
        summary = ours.summary()
        statement = statement_bytes(self.region, origin, window_id, summary)

        def txn(conn: sqlite3.Connection) -> pb.StatementReply:
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
                return self._already_agreed(conn, agreed, request, opened, now)
            # Equal statement bytes: same parties, window, count, total and SHA-256 digest over
            # the sorted records, so the same records, whether or not they were sent.
            if statement == request.statement:
                countersignature = self._key.sign(STATEMENT_TAG, request.statement)
                store.put_statement(
                    conn,
                    **base,
                    acquirer_signature=request.acquirer_signature,
                    acquirer_key_id=request.acquirer_key_id,
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
                self._maybe_settled(conn, window_id, now)
                return pb.StatementReply(
                    agreed=True, issuer_signature=countersignature, issuer_key_id=self._key.key_id
                )
            store.put_statement(conn, **base, state="disputed")
            evidence = {
                "ours": {k: base[k] for k in ("count", "total_fen", "digest")},
                "theirs": claimed_summary,
                "differences": (
                    _differences(theirs, ours.records)
                    if theirs is not None and ours.records is not None
                    else []
                ),
                "records_omitted": theirs is None or ours.records is None,
                "acquirer_statement": base64.b64encode(opened.raw).decode(),
            }
            store.open_dispute(conn, self.region, origin, window_id, evidence, now)
            ledger.audit(
                conn, now, f"peer:{origin}", "statement.disputed", window_id, acquirer=origin
            )
            return pb.StatementReply(
                agreed=False,
                code="statement_mismatch",
                issuer_records=_pb_records(ours.records) if ours.records is not None else [],
                records_omitted=ours.records is None,
                issuer_statement=statement,
            )

        return self._sealed(opened, await self._db.run("statement_compare", txn), now)

    def _already_agreed(
        self,
        conn: sqlite3.Connection,
        agreed: sqlite3.Row,
        request: pb.StatementRequest,
        opened: Opened,
        now: int,
    ) -> pb.StatementReply:
        """A statement for a window whose statement both sides have signed. The same bytes
        again (an acquirer that lost the answer) get the stored countersignature; any other
        statement is refused and kept as evidence: an agreed statement is final, and a
        correction after agreement would be a new, separately signed adjustment."""
        if bytes(agreed["statement"]) == request.statement:
            return pb.StatementReply(
                agreed=True,
                issuer_signature=bytes(agreed["issuer_signature"]),
                issuer_key_id=agreed["issuer_key_id"],
            )
        origin = opened.header.origin
        window_id = agreed["window_id"]
        store.record_conflict(
            conn,
            self.region,
            origin,
            window_id,
            {
                "side": "issuer",
                "agreed": {k: agreed[k] for k in ("count", "total_fen", "digest")},
                "received": _summary(request.statement),
                "received_statement": base64.b64encode(opened.raw).decode(),
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
        return pb.StatementReply(
            agreed=False,
            code="statement_already_agreed",
            agreed_statement=_signed(agreed),
        )

    def _sealed(self, opened: Opened, reply: pb.StatementReply, now: int) -> bytes:
        crash_point("issuer.after_statement")
        return seal(
            self._key,
            self.region,
            opened.header.origin,
            new_id("m"),
            pb.STATEMENT_REPLY,
            reply.SerializeToString(deterministic=True),
            now,
            in_reply_to=opened.header.message_id,
        )

    def _maybe_settled(self, conn: sqlite3.Connection, window_id: str, now: int) -> None:
        acquirers = store.acquirers_in_window(conn, window_id, self.region)
        if acquirers <= store.agreed_acquirers(conn, self.region, window_id):
            store.settle_window(conn, window_id, now)

    async def statements(self, opened: Opened) -> bytes:
        """STATEMENTS: the countersigned statements this node is party to, for netting."""
        try:
            request = pb.StatementsRequest.FromString(opened.payload)
        except DecodeError:
            raise errors.MalformedMessage("the request does not parse") from None
        after = _cursor(request.after)
        # limit 0: everything in one reply, as a peer that does not page asks
        page = min(request.limit, MAX_STATEMENTS_PAGE) if request.limit else -1
        rows = await self._db.read(
            "statements_agreed",
            lambda c: store.agreed_statements(
                c, request.until_ms, after, page + 1 if page > 0 else -1
            ),
        )
        more = 0 < page < len(rows)
        if more:
            rows = rows[:page]
        last = rows[-1] if rows else None
        reply = pb.StatementsReply(
            statements=[_signed(r) for r in rows],
            next=json.dumps([last["issuer"], last["acquirer"], last["window_id"]])
            if more and last is not None
            else "",
        )
        return seal(
            self._key,
            self.region,
            opened.header.origin,
            new_id("m"),
            pb.STATEMENTS_REPLY,
            reply.SerializeToString(deterministic=True),
            self._clock.now_ms(),
            in_reply_to=opened.header.message_id,
        )


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


def _signed(row: sqlite3.Row) -> pb.SignedStatement:
    return pb.SignedStatement(
        statement=bytes(row["statement"]),
        acquirer_signature=bytes(row["acquirer_signature"]),
        acquirer_key_id=row["acquirer_key_id"],
        issuer_signature=bytes(row["issuer_signature"]),
        issuer_key_id=row["issuer_key_id"],
    )


class Netting:
    """Any member computes the same net positions from countersigned statements alone."""

    MAX_PAGES = 10_000  # per peer and netting: millions of statements, and never forever

    def __init__(self, db: Database, wire: Wire, page: int = 500) -> None:
        self._db = db
        self._wire = wire
        self._page = page
        self.region = wire.region
        self._key = wire.key
        self._directory = wire.directory

    def _public(self, region: str, key_id: str) -> bytes | None:
        if region == self.region:
            return self._key.public_key if key_id == self._key.key_id else None
        return _key_of(self._directory.get(region), key_id)

    def verified(self, signed: pb.SignedStatement) -> dict[str, Any] | None:
        """The statement, if both of its signatures verify with keys known here."""
        try:
            st = json.loads(signed.statement)
        except ValueError:
            return None
        acquirer_key = self._public(str(st.get("acquirer")), signed.acquirer_key_id)
        issuer_key = self._public(str(st.get("issuer")), signed.issuer_key_id)
        if acquirer_key is None or issuer_key is None:
            return None
        ok = verify(
            acquirer_key, STATEMENT_TAG, signed.statement, signed.acquirer_signature
        ) and verify(issuer_key, STATEMENT_TAG, signed.statement, signed.issuer_signature)
        return dict(st) if ok else None

    async def _gather(self, region: str, until_ms: int) -> list[pb.SignedStatement]:
        """Every countersigned statement a peer is party to, a page per call."""
        gathered: list[pb.SignedStatement] = []
        after = ""
        for _ in range(self.MAX_PAGES):
            payload = pb.StatementsRequest(until_ms=until_ms, after=after, limit=self._page)
            opened = await self._wire.ask(
                region, pb.STATEMENTS, payload.SerializeToString(), pb.STATEMENTS_REPLY
            )
            reply = pb.StatementsReply.FromString(opened.payload)
            gathered += reply.statements
            if not reply.next:
                return gathered
            if reply.next == after:
                raise errors.MalformedMessage(f"{region} answered the same page again")
            after = reply.next
        raise errors.MalformedMessage(f"{region} has more than {self.MAX_PAGES} pages")

    async def compute(self, who: Principal, until_ms: int) -> dict[str, Any]:
        """Gather countersigned statements from this node and every peer, verify, and net."""
        require_operator(who)
        rows = await self._db.read("statements_agreed", lambda c: store.statements(c, "agreed"))
        gathered = [_signed(r) for r in rows if until_ms == 0 or r["window_end"] <= until_ms]
        unreachable = []
        for peer in self._directory.all():
            try:
                gathered += await self._gather(peer.region, until_ms)
            except (PeerUnreachable, PeerRefused, errors.SuanliError, DecodeError):
                unreachable.append(peer.region)
        used: dict[tuple[str, str, str], dict[str, Any]] = {}
        rejected = 0
        for signed in gathered:
            st = self.verified(signed)
            if st is None:
                rejected += 1
                continue
            used[(st["issuer"], st["acquirer"], st["window"])] = st
        obligations = [(i, a, int(st["total_fen"])) for (i, a, _), st in sorted(used.items())]
        net = positions(obligations)
        return {
            "until": until_ms,
            "statements": [
                {
                    "issuer": i,
                    "acquirer": a,
                    "window": w,
                    "total_fen": st["total_fen"],
                    "digest": st["digest"],
                }
                for (i, a, w), st in sorted(used.items())
            ],
            "positions": net,
            "transfers": [{"from": f, "to": t, "amount_fen": fen} for f, t, fen in transfers(net)],
            "unreachable_peers": unreachable,
            "rejected_statements": rejected,
        }
