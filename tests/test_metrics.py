"""/metrics agrees with the books."""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from node.app import build_node
from node.node import Node
from tests import engines
from tests.conftest import World, demand, order
from tests.exposition import Samples, parse, samples


async def scrape(world: World) -> Samples:
    resp = await world.op.client.get("/metrics")
    assert resp.status == 200
    return parse(await resp.text(), "330100")


def total(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], metric: str, **labels: str
) -> float:
    return sum(
        v
        for (n, lab), v in samples.items()
        if n == metric and all((k, val) in lab for k, val in labels.items())
    )


async def test_metrics_match_the_books(world: World, node: Node) -> None:
    v1 = await world.voucher("acme", 100_000_000)
    v2 = await world.voucher("zju", 10_000_000, "other_compute")
    await world.holders["acme"].post(
        "/v1/demands", demand("storage", 1_000), expect=201
    )  # declined
    p = world.providers["alicloud"]
    code = await world.code("acme", v1["id"], "alicloud", 10_000_000)
    await p.post("/v1/redemptions", order(code, "M-1", 2_000_000), expect=201)
    code = await world.code("zju", v2["id"], "alicloud", 10_000_000)
    hold = (await p.post("/v1/holds", order(code, "M-2", 1_000_000, "other_compute"), expect=201))[
        "hold"
    ]
    await p.post(f"/v1/holds/{hold['id']}/void", expect=200)
    await world.op.post(f"/v1/vouchers/{v2['id']}/revoke", {"reason": "test"}, expect=200)
    code = await world.code("acme", v1["id"], "alicloud", 10_000_000)
    await p.post("/v1/holds", order(code, "M-3", 3_000_000), expect=201)  # left open

    s = await scrape(world)
    budget = (await world.op.get("/v1/budget"))["items"][0]
    assert s[("suanli_budget_total_fen", (("year", "2026"),))] == budget["budget_fen"]
    assert s[("suanli_budget_committed_fen", (("year", "2026"),))] == budget["committed_fen"]
    assert s[("suanli_budget_remaining_fen", (("year", "2026"),))] == budget["remaining_fen"]
    assert total(s, "suanli_issued_fen_total") == v1["face_fen"] + v2["face_fen"]
    assert total(s, "suanli_issuance_decisions_total", outcome="issued") == 2
    assert (
        total(s, "suanli_issuance_decisions_total", outcome="declined", reason="out_of_scope") == 1
    )
    assert total(s, "suanli_redemptions_fen_total", outcome="captured") == 600_000
    assert total(s, "suanli_redemptions_total", outcome="voided") == 1
    assert total(s, "suanli_redemptions_fen_total", outcome="reclaimed") == v2["face_fen"]
    vouchers = await world.op.get("/v1/vouchers")
    for state in ("available", "held", "captured", "reclaimed"):
        assert s[("suanli_vouchers_fen", (("state", state),))] == sum(
            v[f"{state}_fen"] for v in vouchers["items"]
        )
    assert s[("suanli_vouchers_fen", (("state", "held"),))] == 900_000
    assert s[("suanli_vouchers_reclaimed_fen", (("reason", "revoked"),))] == v2["face_fen"]
    assert s[("suanli_vouchers_reclaimed_fen", (("reason", "expired"),))] == 0
    assert total(s, "suanli_db_transaction_seconds_count", name="redeem") == 1
    assert total(s, "suanli_http_requests_total", route="/v1/redemptions", status="201") == 1

    # The quota flows from the books: equal to them now and after a restart (a fresh process's
    # counters start at zero; these do not), with no traffic since.
    books = {
        ("suanli_books_issued_fen", (("year", "2026"),)): v1["face_fen"] + v2["face_fen"],
        ("suanli_books_reclaimed_fen", (("year", "2026"),)): v2["face_fen"],
        ("suanli_books_captured_fen", (("acquirer", "330100"), ("issuer", "330100"))): 600_000,
        ("suanli_books_payable_fen", ()): 600_000,
    }
    for key, value in books.items():
        assert s[key] == value, key
    again = build_node(node.config.data_dir)  # a second process's view of the same books
    try:
        fresh = samples(again)
    finally:
        again.close()
    for key, value in books.items():
        assert fresh[key] == value, key
    assert total(fresh, "suanli_issued_fen_total") == 0  # the counter did restart


def test_no_series_is_exposed_twice(rig: Any) -> None:
    """Read with Prometheus's own parser: each series once. (Every peer used to get a 0 and, with
    a backlog, a second sample of the same series; Prometheus kept the 0, so the outbox alerts
    could not fire.)"""
    from node.store import outbox as outbox_rows
    from tests.fakepeer import PEER

    rig.node.db.run_sync(
        "put",
        lambda c: outbox_rows.outbox_put(
            c, "m_1", PEER, 6, b"payload", None, rig.now() - 90_000, rig.now()
        ),
    )
    seen = samples(rig.node)  # refuses a series exposed twice
    assert seen[("suanli_outbox_pending", (("peer", PEER),))] == 1
    assert seen[("suanli_outbox_oldest_age_seconds", (("peer", PEER),))] >= 90


@engines.sqlite_only
async def test_the_flow_totals_of_an_older_database_are_filled_from_its_ledger(
    world: World, node: Node
) -> None:
    """Schema v9 fills ``flows`` from the transfers already made: dropped and rebuilt by the
    migration, the table holds exactly what the transfers kept it at, and the books check."""
    import sqlite3

    from node.store import ledger
    from node.store.schema import MIGRATIONS

    v = await world.voucher("acme", 100_000_000)
    code = await world.code("acme", v["id"], "alicloud", 10_000_000)
    await world.providers["alicloud"].post(
        "/v1/redemptions", order(code, "F-1", 2_000_000), expect=201
    )

    def rebuild(conn: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
        kept = sorted(ledger.flows(conn))
        conn.execute("DROP TABLE flows")
        MIGRATIONS[9](conn)
        return kept, sorted(ledger.flows(conn))

    kept, rebuilt = node.db.run_sync("rebuild", rebuild)
    assert kept and kept == rebuilt
    assert ("capture", "voucher", "payable", 600_000) in kept
    # (the node fixture checks the books, flows included, when the test ends)


@engines.sqlite_only
async def test_the_voucher_totals_of_an_older_database_are_filled_from_its_books(
    world: World, node: Node
) -> None:
    """Schema v17 fills ``voucher_totals`` from the vouchers and holds already there and keeps
    it by triggers from then on: dropped and rebuilt by the migration, it holds what the
    triggers kept, which is what the books recompute to."""
    import sqlite3

    from node.store import totals
    from node.store.schema import MIGRATIONS

    v = await world.voucher("acme", 100_000_000)
    code = await world.code("acme", v["id"], "alicloud", 10_000_000)
    await world.providers["alicloud"].post(
        "/v1/redemptions", order(code, "T-1", 2_000_000), expect=201
    )
    await world.op.post(f"/v1/vouchers/{v['id']}/revoke", {"reason": "test"}, expect=200)

    def rebuild(conn: sqlite3.Connection) -> tuple[Any, Any, Any]:
        kept = totals.kept(conn)
        conn.execute("DROP TABLE voucher_totals")
        for name in ("issue", "move", "captured", "redeemed"):
            conn.execute(f"DROP TRIGGER voucher_totals_{name}")
        conn.execute("DROP INDEX remote_holds_unanswered")
        conn.execute("DROP TABLE dishonesty")
        MIGRATIONS[17](conn)
        return kept, totals.kept(conn), totals.recompute(conn)

    kept, rebuilt, recomputed = node.db.run_sync("rebuild", rebuild)

    def nonzero(found: dict[Any, tuple[int, int]]) -> dict[Any, tuple[int, int]]:
        return {k: v for k, v in found.items() if v != (0, 0)}

    assert nonzero(kept) == nonzero(rebuilt) == nonzero(recomputed)
    year = int(v["fiscal_year"])
    assert kept[(year, "category", "enterprise", "captured")] == (600_000, 0)
    assert kept[(year, "category", "enterprise", "reclaimed")] == (v["face_fen"] - 600_000, 0)
    assert kept[(year, "acquirer", "330100", "captured")] == (600_000, 1)


def test_every_metric_family_is_documented(rig: Any) -> None:
    """docs/operations.md lists every family /metrics exposes (a node with a peer, so the
    federation's families are there too), and lists none that does not exist."""
    import re
    from pathlib import Path

    exposed = set()
    for family in text_string_to_metric_families(
        generate_latest(rig.node.metrics.registry).decode()
    ):
        if family.name.endswith("_created") or not family.name.startswith("suanli_"):
            continue
        exposed.add(family.name + ("_total" if family.type == "counter" else ""))
    doc = (Path(__file__).resolve().parent.parent / "docs" / "operations.md").read_text()
    section = doc[doc.index("## Metrics") :]
    section = section[: section.index("\n## ", 1)]
    listed = set(re.findall(r"^\| `(suanli_[a-z_]+)` \|", section, re.M))
    assert exposed - listed == set(), "exposed but not documented"
    assert listed - exposed == set(), "documented but not exposed"
