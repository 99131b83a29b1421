"""Do two cities' books agree? Compares an issuer's holds for an acquirer with the acquirer's
records of them, and what each says is owed. Used by the demo's final check, the cluster
tests and operators (read-only connections to each node's books, on its engine, safe beside
running nodes). Each city is named by its data folder (its node.toml says where the books are)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from node.config import load
from node.store.engine import connect_readonly


@contextlib.contextmanager
def _connect(data: Path) -> Iterator[Any]:
    conn = connect_readonly(load(data))
    try:
        yield conn
    finally:
        conn.close()


def compare(
    issuer_region: str, issuer_data: Path, acquirer_region: str, acquirer_data: Path
) -> list[str]:
    """Every disagreement between the issuer's and the acquirer's records, as sentences."""
    problems: list[str] = []
    with _connect(issuer_data) as conn:
        mine = {
            r["id"]: r
            for r in conn.execute(
                "SELECT * FROM holds WHERE acquirer_region = ?", (acquirer_region,)
            )
        }
        row = conn.execute(
            "SELECT balance_fen FROM accounts WHERE name = ?", (f"due:{acquirer_region}",)
        ).fetchone()
        owed = row[0] if row else 0
    with _connect(acquirer_data) as conn:
        remote = list(
            conn.execute("SELECT * FROM remote_holds WHERE issuer_region = ?", (issuer_region,))
        )
        row = conn.execute(
            "SELECT balance_fen FROM accounts WHERE name = ?", (f"issuer:{issuer_region}",)
        ).fetchone()
        claimed = -(row[0] if row else 0)
    matched = set()
    for r in remote:
        if r["state"] in ("pending", "refused"):
            continue
        h = mine.get(r["issuer_hold_id"])
        if h is None:
            problems.append(
                f"{acquirer_region} hold {r['id']} has no {issuer_region} hold {r['issuer_hold_id']}"
            )
            continue
        matched.add(h["id"])
        theirs = (h["state"], h["captured_fen"], h["amount_fen"])
        ours = (r["state"], r["captured_fen"], r["amount_fen"])
        # An expired hold is learnt by the acquirer at its next sweep.
        if theirs != ours and not (h["state"] == "expired" and r["state"] == "held"):
            problems.append(
                f"{issuer_region} hold {h['id']} is {theirs}, {acquirer_region} {r['id']} is {ours}"
            )
    for hold_id in sorted(set(mine) - matched):
        problems.append(
            f"{issuer_region} hold {hold_id} for {acquirer_region} is unknown to {acquirer_region}"
        )
    if owed != claimed:
        problems.append(
            f"{issuer_region} owes {acquirer_region} {owed} fen, {acquirer_region} claims {claimed}"
        )
    return problems


def in_flight(data: Path) -> int:
    with _connect(data) as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()[0]
        )
