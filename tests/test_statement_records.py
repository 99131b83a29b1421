"""A pair statement's records stream from SQLite in record order, a chunk per event-loop turn:
the count, total and digest are the ones the protocol defines (docs/settlement.md) whatever
the ids look like and however many records there are, and the node keeps serving meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.domain.statements import Tally, tally
from node.services.statements import tally_rows
from node.store import settlement as store
from node.store.db import Database
from tests.conftest import examples

WINDOW = "2026-Q4"
PARTNER = "330100"


def protocol_summary(records: list[tuple[str, str, str, int]]) -> dict[str, Any]:
    """The definition, written out: SHA-256 of the sorted records' lines."""
    lines = "".join(f"{h}|{p}|{o}|{fen}\n" for h, p, o, fen in sorted(records))
    return {
        "count": len(records),
        "total_fen": sum(r[3] for r in records),
        "digest": hashlib.sha256(lines.encode()).hexdigest(),
    }


def put(
    path: Path, records: list[tuple[str, str, str, int]], issuer_side: bool, noise: bool = True
) -> None:
    """Rows as the node writes them (captured, in the window), plus noise the queries must
    leave out: another partner, another window, a hold not captured."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys=OFF")  # bare rows: no vouchers or providers behind them
    rows = [(h, p, o, fen, PARTNER, WINDOW, "captured") for h, p, o, fen in records]
    if noise:
        rows += [
            ("noise-1", "p", "n1", 7, "110000", WINDOW, "captured"),
            ("noise-2", "p", "n2", 7, PARTNER, "2026-Q3", "captured"),
            ("noise-3", "p", "n3", 7, PARTNER, WINDOW, "held"),
        ]
    for h, p, o, fen, partner, window, state in rows:
        if issuer_side:
            conn.execute(
                "INSERT INTO holds (id, voucher_id, acquirer_region, provider_id, "
                "authorization_id, order_id, order_amount_fen, compute_class, amount_fen, "
                "captured_fen, state, created_at, expires_at, settlement_window) "
                "VALUES (?, 'v', ?, ?, ?, ?, ?, 'c', ?, ?, ?, 0, 1, ?)",
                (h, partner, p, f"a-{h}", o, fen + 1, fen + 1, fen, state, window),
            )
        else:
            conn.execute(
                "INSERT INTO remote_holds (id, provider_id, issuer_region, kind, code_sha256, "
                "order_id, order_amount_fen, compute_class, state, amount_fen, captured_fen, "
                "issuer_hold_id, settlement_window, created_at) "
                "VALUES (?, ?, ?, 'redeem', 'x', ?, ?, 'c', ?, ?, ?, ?, ?, 0)",
                (f"rh-{p}-{o}", p, partner, o, fen + 1, state, fen, fen, h, window),
            )
    conn.commit()
    conn.close()


async def streamed(db: Database, sql: str, chunk: int) -> tuple[dict[str, Any], int]:
    """The summary fed chunk by chunk, and how many chunks it took."""
    counted, chunks = Tally(), 0
    async with contextlib.aclosing(db.scan("t", sql, (PARTNER, WINDOW), chunk)) as rows:
        async for batch in rows:
            counted.add(batch)
            chunks += 1
    return counted.summary(), chunks


def streamed_from_a_fresh_node(
    records: list[tuple[str, str, str, int]], issuer_side: bool, chunk: int
) -> dict[str, Any]:
    """The records written as one side (with the noise), then streamed by that side's query."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "t.db")
        try:
            put(db.path, records, issuer_side)
            sql = store.ISSUER_RECORDS if issuer_side else store.ACQUIRER_RECORDS
            return asyncio.run(streamed(db, sql, chunk))[0]
        finally:
            db.close()


text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=5)
# Ids from a small pool so that ties on the first fields are common (the acquirer's issuer
# hold ids are not unique in its table), and from all of Unicode (order by code point).
ids = st.one_of(st.sampled_from(["hd_a", "hd_b", "hd_\u00e9", "hd_\U0001f600", "Hd", "hd"]), text)
record = st.tuples(ids, st.sampled_from(["p1", "p\u00e9", "P"]), text, st.integers(0, 10**12))


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(record, max_size=40, unique_by=lambda r: (r[1], r[2])),
    chunk=st.integers(1, 7),
)
def test_the_acquirer_s_records_stream_to_the_protocol_s_digest(
    records: list[tuple[str, str, str, int]], chunk: int
) -> None:
    summary = streamed_from_a_fresh_node(records, False, chunk)
    assert summary == protocol_summary(records) == tally(records)


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(
        record, max_size=40, unique_by=(lambda r: r[0], lambda r: (r[1], r[2]))
    ),  # the issuer's hold ids are its primary key
    chunk=st.integers(1, 7),
)
def test_the_issuer_s_records_stream_to_the_protocol_s_digest(
    records: list[tuple[str, str, str, int]], chunk: int
) -> None:
    assert streamed_from_a_fresh_node(records, True, chunk) == protocol_summary(records)


def test_a_tally_refuses_records_out_of_order_and_keeps_only_what_fits() -> None:
    a, b, c = ("hd_a", "p", "o1", 5), ("hd_b", "p", "o2", 6), ("hd_c", "p", "o3", 7)
    counted = Tally(keep=2)
    counted.add([a])
    counted.add([b])
    assert counted.records == [a, b]
    counted.add([c])
    assert counted.records is None  # more than keep: the summary travels alone
    assert counted.summary() == protocol_summary([c, a, b])
    with pytest.raises(ValueError, match="record order"):
        Tally().add([b, a])
    later = Tally()
    later.add([b])
    with pytest.raises(ValueError, match="record order"):
        later.add([a])  # across chunks too


def test_both_statement_queries_read_an_index_in_record_order(tmp_path: Path) -> None:
    """No sort: a sort of a million records would run whole inside the scan's first chunk."""
    db = Database(tmp_path / "t.db")
    try:
        for sql, index in (
            (store.ISSUER_RECORDS, "holds_captured_window"),
            (store.ACQUIRER_RECORDS, "remote_holds_statement"),
        ):
            plan = [
                row[3] for row in db._writer.execute(f"EXPLAIN QUERY PLAN {sql}", (PARTNER, WINDOW))
            ]
            assert plan[0].startswith("SEARCH") and index in plan[0], plan
            assert not any("TEMP B-TREE" in step for step in plan), plan
    finally:
        db.close()


async def test_a_long_scan_gives_the_loop_back_between_chunks_and_reads_one_snapshot(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "t.db")
    records = [(f"hd_{i:05d}", "p", f"o{i}", i) for i in range(2_500)]
    put(db.path, records, issuer_side=True)
    turns = 0
    stop = False

    async def other_work() -> None:
        nonlocal turns
        while not stop:
            turns += 1
            await asyncio.sleep(0)

    worker = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    seen: list[int] = []
    counted = Tally()
    try:
        scan = db.scan("t", store.ISSUER_RECORDS, (PARTNER, WINDOW), 1_000)
        async with contextlib.aclosing(scan) as chunks:
            async for rows in chunks:
                seen.append(turns)
                counted.add(rows)
                if len(seen) == 1:  # a capture committed mid-scan is not in this snapshot
                    put(db.path, [("hd_99999", "p", "late", 1)], True, noise=False)
        assert len(seen) == 3 and seen[0] < seen[1] < seen[2], seen
        assert counted.summary() == protocol_summary(records)
        # The same through the function settlement uses, now with the late capture.
        again = await tally_rows(db, store.ISSUER_RECORDS, (PARTNER, WINDOW), keep=10)
        assert again.count == 2_501 and again.records is None
    finally:
        stop = True
        await worker
        db.close()


def test_the_cities_in_a_window_are_found_by_seeks_not_a_scan_of_every_capture(
    tmp_path: Path,
) -> None:
    """Settling a window asks which cities captured in it, at every countersignature: the
    answer must cost the number of cities, not the number of captures ever made."""
    db = Database(tmp_path / "t.db")
    try:
        put(db.path, [("hd_1", "p", "o1", 5), ("hd_2", "p", "o2", 0)], True)  # and the noise
        conn = sqlite3.connect(db.path)
        conn.execute("PRAGMA foreign_keys=OFF")
        for i, (acquirer, window, state, fen) in enumerate(
            [
                ("440300", WINDOW, "captured", 0),  # a zero capture still counts
                ("110000", WINDOW, "held", 0),
                ("370200", "2026-Q3", "captured", 9),
                ("999999", WINDOW, "captured", 3),  # this node itself
            ]
        ):
            conn.execute(
                "INSERT INTO holds (id, voucher_id, acquirer_region, provider_id, "
                "authorization_id, order_id, order_amount_fen, compute_class, amount_fen, "
                "captured_fen, state, created_at, expires_at, settlement_window) "
                "VALUES (?, 'v', ?, 'p', ?, ?, 10, 'c', 10, ?, ?, 0, 1, ?)",
                (f"x{i}", acquirer, f"ax{i}", f"ox{i}", fen, state, window),
            )
        conn.commit()
        straight = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT acquirer_region FROM holds WHERE settlement_window = ? "
                "AND state = 'captured' AND acquirer_region != ?",
                (WINDOW, "999999"),
            )
        }
        assert store.acquirers_in_window(conn, WINDOW, "999999") == straight
        assert straight == {PARTNER, "110000", "440300"}
        assert store.acquirers_in_window(conn, "2026-Q3", "999999") == {PARTNER, "370200"}
        assert store.acquirers_in_window(conn, "2027-Q1", "999999") == set()
        traced: list[str] = []
        conn.set_trace_callback(traced.append)
        store.acquirers_in_window(conn, WINDOW, "999999")
        conn.set_trace_callback(None)
        plan = [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {traced[0]}")]
        assert not any(step.startswith("SCAN holds") for step in plan), plan
        assert sum(step.startswith("SEARCH holds") for step in plan) == 3, plan
        conn.close()
    finally:
        db.close()
