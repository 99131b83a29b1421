"""A pair statement's content, pure: its records, their tally, its signed bytes, the values
that the two sides exchange (docs/settlement.md). No I/O; the services send, compare and keep
statements (``node/services/statements.py``), the federation carries them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from node.keys import canonical_json

STATEMENT_TAG = b"suanli/statement/v1\x00"
Record = tuple[str, str, str, int]  # issuer hold id, provider id, order id, captured fen
SUMMARY_KEYS = ("count", "total_fen", "digest")


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


def parsed(statement: bytes) -> dict[str, Any] | None:
    """A statement's canonical JSON as a dict (None if absent or unreadable)."""
    try:
        claimed = json.loads(statement) if statement else None
    except ValueError:
        return None
    return claimed if isinstance(claimed, dict) else None


def summary_of(statement: bytes) -> dict[str, Any] | None:
    """Count, total and digest of a statement (None if absent or unreadable)."""
    claimed = parsed(statement)
    return None if claimed is None else {k: claimed.get(k) for k in SUMMARY_KEYS}


def differences(ours: Sequence[Record], theirs: Sequence[Record]) -> list[dict[str, Any]]:
    """Record by record, by issuer hold id: where the acquirer's and the issuer's differ."""
    mine = {r[0]: r for r in ours}
    other = {r[0]: r for r in theirs}
    return [
        {
            "issuer_hold_id": hold_id,
            "acquirer": _record(mine.get(hold_id)),
            "issuer": _record(other.get(hold_id)),
        }
        for hold_id in sorted(set(mine) | set(other))
        if mine.get(hold_id) != other.get(hold_id)
    ]


def _record(r: Record | None) -> dict[str, Any] | None:
    return None if r is None else {"provider_id": r[1], "order_id": r[2], "captured_fen": r[3]}


@dataclass(frozen=True)
class SignedStatement:
    """A statement with both cities' signatures: final, and what netting is computed from."""

    statement: bytes
    acquirer_signature: bytes
    acquirer_key_id: str
    issuer_signature: bytes
    issuer_key_id: str


@dataclass(frozen=True)
class StatementClaim:
    """What the acquirer sends: its signed statement, and its records when they fit in one
    message (``records`` None: omitted, agreement then rests on the digest)."""

    statement: bytes
    acquirer_signature: bytes
    acquirer_key_id: str
    records: Sequence[Record] | None


@dataclass(frozen=True)
class StatementAnswer:
    """The issuer's answer: countersigned (``agreed``); or ``code`` says why not:
    ``window_open`` (ask again by ``closes_at_ms``), ``statement_mismatch`` (with the issuer's
    own statement, and its records unless ``issuer_records`` is None: too many to send), or
    ``statement_already_agreed`` (with the statement both sides signed)."""

    agreed: bool
    code: str = ""
    issuer_signature: bytes = b""
    issuer_key_id: str = ""
    closes_at_ms: int = 0
    issuer_statement: bytes = b""
    issuer_records: Sequence[Record] | None = ()
    agreed_statement: SignedStatement | None = None
