"""kill -9 at each step of the exchange between two cities (docs/settlement.md, "Settling
between cities"): whichever node dies wherever, each city ends with one transfer, booked once.
Six three-node runs, about a minute on two cores: in ``make deep`` (which .ci/run runs), not in
``make test``'s budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.proc import wait_until
from tests.test_clearing import agreed_trio, positions, transfers, wait_state
from tests.test_settlement import GY, HZ, QD

# Each step of the exchange, and the node that dies there (kill -9, as a power cut would).
STEPS = [
    (HZ, "clearing.after_record"),  # the payer committed the transfer, nothing sent
    (GY, "clearing.after_advice"),  # the payee accepted the advice, the ACK not sent
    (HZ, "acquirer.before_apply.transfer_advice"),  # the ACK arrived, not applied
    (GY, "clearing.after_answer"),  # the payee confirmed, nothing sent
    (HZ, "clearing.after_confirmation"),  # the payer booked the confirmation, the ACK not sent
    (GY, "acquirer.before_apply.receipt_confirmation"),  # that ACK arrived, not applied
]


@pytest.mark.parametrize(("victim", "point"), STEPS, ids=[p for _, p in STEPS])
def test_kill9_at_each_step_settles_once(tmp_path: Path, victim: str, point: str) -> None:
    with Cluster(tmp_path, [HZ, QD, GY]).session() as c:
        agreed_trio(c, {victim: {"SUANLI_CRASH_AT": point}})
        hz, gy = c[HZ], c[GY]
        body = {"peer": GY, "amount_fen": 87_000_000, "value_date": "2026-12-01", "reference": "K"}
        status, _ = hz.call_raw("POST", "/v1/settlement/transfers", body=body)
        if point == "clearing.after_record" or point.endswith("transfer_advice"):
            assert status == 0 and hz.process.wait_exit() == -9
            c.restart(HZ)
        elif point == "clearing.after_advice":
            assert status == 201 and gy.process.wait_exit() == -9
            c.restart(GY)
        else:
            assert status == 201
        wait_until(lambda: len(transfers(gy)) == 1, "the advice to reach Guiyang", timeout=40)
        [t] = transfers(hz)
        assert transfers(gy)[0]["id"] == t["id"]
        wait_state(gy, t["id"], "awaiting_confirmation")
        status, _ = gy.call_raw("POST", f"/v1/settlement/transfers/{t['id']}/confirmation", body={})
        if point in ("clearing.after_answer", "acquirer.before_apply.receipt_confirmation"):
            if point == "clearing.after_answer":
                assert status == 0
            assert gy.process.wait_exit(30) == -9
            c.restart(GY)
        elif point == "clearing.after_confirmation":
            assert status == 200 and hz.process.wait_exit(30) == -9
            c.restart(HZ)
        else:
            assert status == 200
        for m in (hz, gy):
            wait_state(m, t["id"], "confirmed", timeout=40)
        # Exactly once on both sides: one transfer each, its statements booked once.
        assert len(transfers(hz)) == len(transfers(gy)) == 1
        assert positions(hz)[f"cleared:{GY}"] == 87_000_000
        assert positions(gy)[f"cleared:{HZ}"] == -87_000_000
        assert positions(hz)[f"due:{GY}"] == positions(gy)[f"issuer:{HZ}"] == 0

        def outboxes_empty() -> bool:
            for m in (hz, gy):
                with m.db() as conn:
                    if conn.execute(
                        "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"
                    ).fetchone()[0]:
                        return False
            return True

        wait_until(outboxes_empty, "every message answered", timeout=40)
        c.check_all()
