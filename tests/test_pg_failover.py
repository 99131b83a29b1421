"""A database that fails over (issue 19, item 5), with real processes and a real PostgreSQL:
Hangzhou's books are on a primary with a synchronous streaming standby, and its node connects
with a multi-host connection string (``target_session_attrs=read-write``). Under a steady load
of cross-region and local redemptions, the primary is killed with SIGKILL and the standby
promoted. Hangzhou's node loses its write connection and with it the lease, exits 75, and is
started again (as its supervisor would): it reaches the promoted database and goes on.
Nothing answered is lost, nothing is applied twice, both cities agree and ``suanli check``
passes. Runs in ``make test-postgres``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.files import write_private
from node.tools.pgcluster import PASSWORD, PgCluster
from tests import engines
from tests.cluster import http
from tests.proc import wait_until
from tests.test_federation import HZ_CENTRE, order, pair

HZ, GY = "330100", "520100"

pytestmark = pytest.mark.skipif(not engines.POSTGRES, reason="make test-postgres runs it")


@pytest.fixture
def replicated() -> Iterator[PgCluster]:
    cluster = PgCluster.create()
    try:
        cluster.create_database("hangzhou")
        cluster.add_standby()
        yield cluster
    finally:
        cluster.close()


def test_the_node_follows_a_promotion_and_loses_nothing(
    tmp_path: Path, replicated: PgCluster
) -> None:
    def storage(region: str, folder: Path) -> dict[str, str] | None:
        if region != HZ:
            return engines.storage(folder)
        secret = folder / "hangzhou.password"
        folder.mkdir(parents=True, exist_ok=True)
        write_private(secret, PASSWORD)
        return {
            "backend": "postgresql",
            "dsn": replicated.dsn("hangzhou", both=True),
            "password_file": str(secret),
        }

    with pair(tmp_path, storage=storage) as cluster:
        hz, gy = cluster[HZ], cluster[GY]
        cluster.provider(HZ, "hz-centre", HZ_CENTRE)
        # Synchronous: the standby has every commit before the node is answered.
        assert (
            replicated.primary.sql(
                "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'"
            )
            == "sync"
        )
        answered, timing = _fail_over_under_load(cluster, hz, gy, replicated)
        print(f"database failover: {timing}")
        cluster.wait_agree(timeout=60)
        with hz.db() as conn:
            captured = {
                r[0] for r in conn.execute("SELECT order_id FROM holds WHERE state = 'captured'")
            }
            rows = conn.execute(
                "SELECT acquirer_region, COUNT(*), SUM(captured_fen) FROM holds "
                "WHERE state = 'captured' GROUP BY 1 ORDER BY 1"
            ).fetchall()
        # Nothing answered is lost: every order answered 201 is captured in the promoted books.
        assert answered <= captured, sorted(answered - captured)
        rounds = len(answered) // 2
        assert [tuple(r) for r in rows] == [
            (HZ, rounds, rounds * 90_000),
            (GY, rounds, rounds * 90_000),
        ]
        cluster.check_all()


def _fail_over_under_load(
    cluster: Any, hz: Any, gy: Any, pg: PgCluster
) -> tuple[set[str], dict[str, float]]:
    """Redemptions at Guiyang (for Hangzhou's vouchers) and at Hangzhou, one every 50 ms from
    two threads, each retried until answered (a provider's client); the primary database is
    killed after a third of them and its standby promoted. Returns the orders answered."""
    voucher = cluster.voucher(HZ, "startup", 100_000_000)
    rounds = 12
    remote = [cluster.code(HZ, "startup", voucher, GY, "gy-centre", 100_000) for _ in range(rounds)]
    local = [cluster.code(HZ, "startup", voucher, HZ, "hz-centre", 100_000) for _ in range(rounds)]
    answered: set[str] = set()
    failures: list[Any] = []
    third = threading.Event()

    def redeem(node: Any, provider: str, code: str, order_id: str) -> None:
        deadline = time.monotonic() + 60
        while True:
            status, body = http(
                "POST",
                node.url + "/v1/redemptions",
                node.tokens[provider],
                order(code, order_id, 300_000),
                timeout=5,
            )
            if status in (200, 201, 202):
                if status != 202:
                    answered.add(order_id)
                return
            if time.monotonic() > deadline:
                failures.append((order_id, status, body))
                return
            time.sleep(0.1)  # the node is restarting, or answered 503 not_active

    def cross_region() -> None:
        for n, code in enumerate(remote):
            redeem(gy, "gy-centre", code, f"FO-GY-{n}")
            time.sleep(0.05)

    def here() -> None:
        for n, code in enumerate(local):
            if n == rounds // 3:
                third.set()
            redeem(_Current(hz), "hz-centre", code, f"FO-HZ-{n}")
            time.sleep(0.05)

    threads = [threading.Thread(target=cross_region), threading.Thread(target=here)]
    for t in threads:
        t.start()
    assert third.wait(30)
    pg.primary.kill()
    killed = time.monotonic()
    pg.standby.promote()  # type: ignore[union-attr]
    promoted = time.monotonic()
    # The node finds out at its next write or lease check (each second) and exits 75.
    code = hz.process.wait_exit(timeout=15)
    assert code == 75, hz.process.log()
    exited = time.monotonic()
    hz.process.start()  # its supervisor's Restart=on-failure
    restarted = time.monotonic()
    for t in threads:
        t.join(120)
    assert not failures, failures

    # The remote orders answered 202 complete through Guiyang's outbox: count them as answered
    # once Guiyang has them captured.
    def remote_done() -> bool:
        with gy.db() as conn:
            done = {
                r[0]
                for r in conn.execute("SELECT order_id FROM remote_holds WHERE state = 'captured'")
            }
        return done >= {f"FO-GY-{n}" for n in range(rounds)}

    wait_until(remote_done, "Guiyang's redemptions to complete through its outbox", 60)
    answered |= {f"FO-GY-{n}" for n in range(rounds)}
    return answered, {
        "promote_s": round(promoted - killed, 2),
        "node_exit_s": round(exited - killed, 2),
        "serving_again_s": round(restarted - killed, 2),
    }


class _Current:
    """A member's process as it is now (it is restarted during the test)."""

    def __init__(self, member: Any) -> None:
        self.member = member

    @property
    def url(self) -> str:
        return str(self.member.process.url)

    @property
    def tokens(self) -> dict[str, str]:
        return dict(self.member.tokens)
