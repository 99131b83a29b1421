"""Provider payouts at volume: signed after the close from lines streamed in hold-id order
(schema v7), once, whoever signs; the lines a provider downloads reproduce its digest.

The books here are seeded with bare captured holds (``node.tools.bench.payout.seed``: no vouchers
spent, no ledger behind them) to reach thousands of lines quickly, so they are not checked for
balance; the three-city tests in test_settlement.py sign payouts of real captures and check."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node import errors
from node.app import build_node
from node.clock import ManualClock
from node.keys import verify
from node.node import Node
from node.services.common import SYSTEM, Principal
from node.services.payouts import PAYOUT_TAG
from node.store import settlement as store
from node.store.db import Database
from node.tools.bench.payout import HZ, seed
from tests import engines
from tests.conftest import examples, make_node

CAPTURES = 2_500  # three chunks of each query, and one more
PROVIDERS = [f"p_{i:016x}" for i in range(3)]


def capture_rows(window: str) -> list[tuple[str, str, str, str, str, int]]:
    """(hold id, provider, order id, holder USCC, issuing city, fen): local and cross-region
    captures with interleaved ids, so the two queries' chunks must be merged; the order ids
    hold what a provider may send (``|``, commas, quotes, non-ASCII)."""
    rows = []
    for i in range(CAPTURES):
        local = i % 3 != 1
        rows.append(
            (
                f"x_{i:06d}",
                PROVIDERS[i % 7 % 3],
                f'o|{i},"订单"' if i % 5 == 0 else f"order-{i}",
                "91330100000000001X" if local else "91520100000000001X",
                HZ if local else "520100",
                100 + i,
            )
        )
    return rows


def put(path: Path, window: str, rows: list[tuple[str, str, str, str, str, int]]) -> None:
    seed(path, window, 0, len(PROVIDERS))  # the providers, holder and voucher the lines join
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("BEGIN")
    for hold, provider, order, holder, issuer, fen in rows:
        if issuer == HZ:
            conn.execute(
                "INSERT INTO holds (id, voucher_id, acquirer_region, provider_id, "
                "authorization_id, order_id, order_amount_fen, compute_class, amount_fen, "
                "captured_fen, state, created_at, expires_at, settlement_window) VALUES "
                "(?, 'v_0', ?, ?, ?, ?, 10000, 'model_services', ?, ?, 'captured', 0, 1, ?)",
                (hold, HZ, provider, "a" + hold, order, fen, fen, window),
            )
        else:
            conn.execute(
                "INSERT INTO remote_holds (id, provider_id, issuer_region, kind, code_sha256, "
                "order_id, order_amount_fen, compute_class, state, amount_fen, captured_fen, "
                "created_at, payout_window, holder_uscc) VALUES (?, ?, ?, 'redeem', '', ?, "
                "10000, 'model_services', 'captured', ?, ?, 0, ?, ?)",
                (hold, provider, issuer, order, fen, fen, window, holder),
            )
    # Not in the window: another window's capture, and a hold not captured.
    conn.execute(
        "INSERT INTO holds (id, voucher_id, acquirer_region, provider_id, authorization_id, "
        "order_id, order_amount_fen, compute_class, amount_fen, captured_fen, state, created_at, "
        "expires_at, settlement_window) VALUES ('x_other', 'v_0', ?, ?, 'a_o', 'o', 10, "
        "'model_services', 5, 5, 'captured', 0, 1, '2020-Q1')",
        (HZ, PROVIDERS[0]),
    )
    conn.execute(
        "INSERT INTO remote_holds (id, provider_id, issuer_region, kind, code_sha256, order_id, "
        "order_amount_fen, compute_class, state, amount_fen, created_at, payout_window) VALUES "
        "('x_held', ?, '520100', 'hold', '', 'oh', 10, 'model_services', 'held', 5, 0, ?)",
        (PROVIDERS[0], window),
    )
    conn.execute("COMMIT")
    conn.close()


def digest(lines: list[tuple[str, str, str, str, str, int]]) -> str:
    """The digest as docs/settlement.md defines it, written out independently of the node."""
    text = "".join(f"{h}|{o}|{u}|{i}|model_services|{fen}\n" for h, _, o, u, i, fen in lines)
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Node, str, list[Any]]]:
    node, _ = make_node(tmp_path, ManualClock(1_772_413_200_000))
    try:
        window = asyncio.run(node.settlement.windows(SYSTEM))[-1]["window_id"]
        rows = capture_rows(window)
        put(node.db.path, window, rows)
        yield node, window, rows
    finally:
        node.close()


def lines_csv(node: Node, who: Principal, window: str | None) -> list[dict[str, str]]:
    async def text() -> str:
        return "".join([chunk async for chunk in node.settlement.payouts_csv(who, window)])

    return list(csv.DictReader(io.StringIO(asyncio.run(text()))))


@engines.sqlite_only
def test_each_provider_s_statement_signs_count_total_and_digest_of_its_lines(
    seeded: tuple[Node, str, list[Any]],
) -> None:
    node, window, rows = seeded
    closed = asyncio.run(node.settlement.close(SYSTEM, window))
    assert closed == {"window": window, "payouts": 3, "captures": CAPTURES}
    items = asyncio.run(node.settlement.payouts(SYSTEM, window))
    assert [p["provider_id"] for p in items] == PROVIDERS
    for item in items:
        mine = sorted(r for r in rows if r[1] == item["provider_id"])
        st_ = item["statement"]
        assert st_["type"] == "suanli.payout.v2" and "lines" not in st_
        assert (st_["count"], st_["total_fen"], st_["digest"]) == (
            len(mine),
            sum(r[5] for r in mine),
            digest(mine),
        )
        raw = node.db.run_sync(
            "t",
            lambda c, p=item["provider_id"]: c.execute(
                "SELECT statement, signature FROM payouts WHERE window_id = ? AND provider_id = ?",
                (window, p),
            ).fetchone(),
        )
        assert verify(node.key.public_key, PAYOUT_TAG, raw[0], raw[1])
        # What the provider downloads with its own token reproduces its statement.
        provider = Principal("provider", item["provider_id"], "t_x")
        got = lines_csv(node, provider, window)
        assert [
            (g["hold_id"], g["provider_id"], g["order_id"], g["holder_uscc"], g["issuer_region"])
            for g in got
        ] == [r[:5] for r in mine]
        assert digest([(g["hold_id"], "", g["order_id"], g["holder_uscc"], g["issuer_region"],
                        int(g["captured_fen"])) for g in got]) == st_["digest"]  # fmt: skip
    # The list in pages: by window, then provider.
    first = asyncio.run(node.settlement.payouts(SYSTEM, None, 2))
    rest = asyncio.run(node.settlement.payouts(SYSTEM, None, 2, first[-1]["cursor"]))
    assert [p["provider_id"] for p in first + rest] == PROVIDERS and len(rest) == 1
    mine = asyncio.run(node.settlement.payouts(Principal("provider", PROVIDERS[1], "t"), None))
    assert [p["provider_id"] for p in mine] == [PROVIDERS[1]]
    everything = lines_csv(node, SYSTEM, None)
    assert [g["hold_id"] for g in everything] == sorted(r[0] for r in rows)
    with pytest.raises(errors.Forbidden):
        node.settlement.payouts_csv(Principal("holder", "h_0", "t_y"), window)


@engines.sqlite_only
def test_payout_lines_are_read_in_hold_id_order_from_indexes(
    seeded: tuple[Node, str, list[Any]],
) -> None:
    node, window, _ = seeded
    queries = [
        (store.PAYOUT_LOCAL_LINES, (HZ, window)),
        (store.PAYOUT_REMOTE_LINES, (window,)),
        (store.PAYOUT_LOCAL_LINES_OF, (HZ, window, PROVIDERS[0])),
        (store.PAYOUT_REMOTE_LINES_OF, (window, PROVIDERS[0])),
    ]
    for sql, params in queries:
        plan = node.db.run_sync(
            "t", lambda c, s=sql, p=params: c.execute("EXPLAIN QUERY PLAN " + s, p).fetchall()
        )
        text = " | ".join(r[3] for r in plan)
        assert "TEMP B-TREE" not in text, text
        assert "holds_captured_window" in text or "remote_holds_payout" in text, text


@engines.sqlite_only
def test_payouts_are_signed_once_when_two_signers_race_and_after_a_crash(
    seeded: tuple[Node, str, list[Any]],
) -> None:
    node, window, _ = seeded
    # A crash between the close and the signing: the close is committed, nothing signed.
    node.db.run_sync("t", lambda c: node.settlement._close_txn(c, window, 1_772_413_200_000, "t"))
    assert node.db.run_sync("t", store.payouts_pending) == [window]
    # The CLI beside the node: another process, another lock, the same books.
    beside = build_node(node.config.data_dir, ManualClock(1_772_413_200_000))
    try:

        async def race() -> list[Any]:
            return await asyncio.gather(
                node.settlement.tick(),
                beside.settlement.sign_payouts(window),
                node.settlement.sign_payouts(window),
            )

        _, second, third = asyncio.run(race())
    finally:
        beside.close()
    assert second == third == (3, CAPTURES)
    counts = node.db.run_sync(
        "t",
        lambda c: (
            c.execute("SELECT COUNT(*) FROM payouts").fetchone()[0],
            c.execute("SELECT COUNT(*) FROM audit WHERE action = 'window.payouts'").fetchone()[0],
        ),
    )
    assert counts == (3, 1)
    assert node.db.run_sync("t", store.payouts_pending) == []


def test_a_version_6_window_counts_as_signed(tmp_path: Path) -> None:
    from node.store.db import migrate
    from node.store.schema import MIGRATIONS

    conn = sqlite3.connect(tmp_path / "v6.db", isolation_level=None)
    conn.execute("BEGIN")
    for version in range(1, 7):
        MIGRATIONS[version](conn)
    conn.execute("PRAGMA user_version=6")
    conn.execute("COMMIT")
    conn.execute(
        "INSERT INTO windows (window_id, start_ms, end_ms, state, closed_at, closed_by) "
        "VALUES ('2026-Q1', 1, 2, 'closed', 3, 'op')"
    )
    assert migrate(conn) == 6
    assert conn.execute("SELECT payouts_at FROM windows").fetchall() == [(3,)]
    assert store.payouts_pending(conn) == []
    conn.close()


ids = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    min_size=1,
    max_size=4,
)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tables=st.lists(st.lists(ids, max_size=12, unique=True), min_size=1, max_size=3).filter(
        lambda ts: len({i for t in ts for i in t}) == sum(len(t) for t in ts)
    ),
    chunk=st.integers(1, 4),
)
def test_merged_scans_give_every_row_once_in_order(tables: list[list[str]], chunk: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "t.db")
        try:

            def fill(conn: sqlite3.Connection) -> None:
                for n, table in enumerate(tables):
                    conn.execute(f"CREATE TABLE t{n} (id TEXT PRIMARY KEY, n INTEGER)")
                    conn.executemany(f"INSERT INTO t{n} VALUES (?, ?)", [(i, n) for i in table])

            db.run_sync("fill", fill)

            async def merged() -> list[list[tuple[Any, ...]]]:
                queries = [(f"SELECT id, n FROM t{n} ORDER BY id", ()) for n in range(len(tables))]
                return [c async for c in db.scan_merged("t", queries, chunk)]

            chunks = asyncio.run(merged())
        finally:
            db.close()
    expected = sorted((i, n) for n, table in enumerate(tables) for i in table)
    assert [row for c in chunks for row in c] == expected
    assert all(c for c in chunks)  # no empty chunk


@engines.sqlite_only
def test_the_payout_test_vector_in_the_docs_is_what_a_node_signs(tmp_path: Path) -> None:
    from node.keys import NodeKey
    from node.services.payouts import LocalSettlement

    doc = (Path(__file__).resolve().parent.parent / "docs" / "settlement.md").read_text()
    block = doc.split("### Payout test vector")[1].split("```")[1]
    v = {ln.split(None, 1)[0]: ln.split(None, 1)[1] for ln in block.strip().splitlines()}
    # Anyone can check the digest and the signature with the vector alone.
    lines = (v["line1"] + "\n" + v["line2"] + "\n").encode()
    assert hashlib.sha256(lines).hexdigest() == v["digest"]
    key = NodeKey(bytes.fromhex(v["seed"]))
    assert key.key_id == v["key_id"] and PAYOUT_TAG.hex() == v["tag_hex"]
    statement = v["statement"].encode()
    assert verify(key.public_key, PAYOUT_TAG, statement, bytes.fromhex(v["signature"]))
    # And a node with that key signs exactly those bytes for those captures.
    clock = ManualClock(1_772_413_200_000)
    node, _ = make_node(tmp_path, clock)
    try:
        settlement = LocalSettlement(node.db, clock, node.policies, key)
        put(
            node.db.path,
            "2026-Q1",
            [
                ("x_000001", PROVIDERS[0], "A-1", "91330100000000001X", HZ, 30_000),
                ("x_000002", PROVIDERS[0], 'B|2,"订单"', "91520100000000001X", "520100", 12_345),
            ],
        )
        node.db.run_sync("t", lambda c: settlement._close_txn(c, "2026-Q1", clock.now_ms(), "t"))
        assert asyncio.run(settlement.sign_payouts("2026-Q1")) == (1, 2)
        row = node.db.run_sync(
            "t", lambda c: c.execute("SELECT statement, signature FROM payouts").fetchone()
        )
        assert bytes(row[0]) == statement and bytes(row[1]).hex() == v["signature"]
    finally:
        node.close()
