"""Forward-only migrations: a database made by an older schema is brought forward with its
caches back-filled from the rows they summarise, and the node's invariants hold after."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from node.clock import ManualClock
from node.store.db import migrate
from node.store.schema import MIGRATIONS, SCHEMA_VERSION
from tests import engines
from tests.conftest import make_node


def test_a_version_1_database_migrates_forward_with_backfilled_caches(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    MIGRATIONS[1](conn)
    conn.execute("PRAGMA user_version=1")
    conn.execute("COMMIT")
    # Rows as a version-1 node would have written them: two holds for a peer, one captured.
    conn.executescript(
        """
        INSERT INTO holders VALUES ('h_1', '91330100716105852F', 'H', 'enterprise', '330100', NULL, 0);
        INSERT INTO decisions VALUES ('d_1', 'h_1', 2026, 'model_services', 100, NULL, 'a', 'b', 'issued',
            3000, 1000, '[]', 'v_1', 'x', 0);
        INSERT INTO vouchers VALUES ('v_1', 'h_1', 2026, 'model_services', 3000, 1000, 500, 200, 300, 0,
            'active', 0, 99, 'd_1', x'00', x'00', 'k');
        INSERT INTO authorizations VALUES ('a_1', 'v_1', 'h_1', '520100', 'p_gy', 1000, 'c1', 99, 'used', 'hd_1', 0);
        INSERT INTO authorizations VALUES ('a_2', 'v_1', 'h_1', '520100', 'p_gy', 1000, 'c2', 99, 'used', 'hd_2', 0);
        INSERT INTO holds VALUES ('hd_1', 'v_1', '520100', 'p_gy', 'a_1', 'o1', 1000, 'model_services', 300, 300,
            'captured', 0, 99, 1, '2026-Q1');
        INSERT INTO holds VALUES ('hd_2', 'v_1', '520100', 'p_gy', 'a_2', 'o2', 1000, 'model_services', 200, 0,
            'held', 0, 99, NULL, NULL);
        """
    )
    started = migrate(conn)
    assert started == 1 and conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    exposure = dict(
        ((a, w), f) for a, w, f in conn.execute("SELECT acquirer, window_id, fen FROM exposure")
    )
    assert exposure == {("520100", ""): 200, ("520100", "2026-Q1"): 300}
    assert [r[0] for r in conn.execute("SELECT window_id FROM window_activity")] == ["2026-Q1"]
    assert "payout_window" in [r[1] for r in conn.execute("PRAGMA table_info(remote_holds)")]
    assert migrate(conn) == SCHEMA_VERSION  # nothing left to do
    conn.close()


@engines.sqlite_only
def test_a_fresh_node_is_at_the_current_version_and_checks_clean(tmp_path: Path) -> None:
    node, _ = make_node(tmp_path, ManualClock(1_772_413_200_000))
    try:
        version = node.db.run_sync("v", lambda c: c.execute("PRAGMA user_version").fetchone()[0])
        assert version == SCHEMA_VERSION
        assert node.check() == []
    finally:
        node.close()


@engines.sqlite_only
def test_the_models_states_are_the_databases(tmp_path: Path) -> None:
    """One list of states per record: the model's Literal types, the schema's CHECK clauses."""
    import re
    from typing import get_args

    from node.domain import model

    node, _ = make_node(tmp_path, ManualClock(1_772_413_200_000))
    try:
        tables = dict(
            node.db.run_sync(
                "s",
                lambda c: c.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
                ).fetchall(),
            )
        )
    finally:
        node.close()

    def checked(table: str, column: str = "state") -> set[str]:
        found = re.search(
            rf"{column} TEXT NOT NULL CHECK \({column} IN \(([^)]*)\)\)", tables[table]
        )
        assert found, table
        return {v.strip().strip("'") for v in found[1].split(",")}

    for table, states in [
        ("providers", model.ProviderState),
        ("vouchers", model.VoucherState),
        ("authorizations", model.AuthorizationState),
        ("holds", model.HoldState),
        ("remote_holds", model.RemoteHoldState),
        ("statements", model.StatementState),
        ("windows", model.WindowState),
    ]:
        assert checked(table) == set(get_args(states)), table
    assert checked("remote_holds", "kind") == set(get_args(model.RemoteHoldKind))
