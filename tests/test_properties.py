"""Property tests: whatever the sequence of issue, hold, capture, void, redeem, expire and
revoke, and whatever fails along the way, the money invariants hold after every step."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node import errors
from node.app import build_node
from node.clock import ManualClock
from node.domain.issuance import Demand
from node.provision import init_node
from node.services.common import SYSTEM, Principal
from node.services.spending import Order
from tests import engines
from tests.conftest import HZ_ENTERPRISE, PROVIDER_A, SH_ENTERPRISE, START, examples, policy_text

HOUR = 3_600_000

op = st.one_of(
    st.tuples(st.just("issue"), st.integers(0, 1), st.integers(1, 20_000_000)),
    st.tuples(
        st.just("hold"), st.integers(0, 7), st.integers(1, 20_000_000), st.integers(1, 5_000_000)
    ),
    st.tuples(
        st.just("redeem"), st.integers(0, 7), st.integers(1, 20_000_000), st.integers(1, 5_000_000)
    ),
    st.tuples(st.just("capture"), st.integers(0, 7), st.integers(0, 100)),
    st.tuples(st.just("void"), st.integers(0, 7)),
    st.tuples(st.just("advance"), st.integers(1, 24 * 400)),
    st.tuples(st.just("sweep")),
    st.tuples(st.just("revoke"), st.integers(0, 7)),
)


async def _run(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock(START)
        data = Path(tmp) / "n"
        text = policy_text(annual_budget_fen="5_000_000", annual_cap_fen="3_000_000")
        init_node(
            data, "330100", "Prop", text, 0, "NORMAL", 1.0, storage=engines.storage(Path(tmp))
        )
        node = build_node(data, clock)
        try:
            holders = []
            for i, code in enumerate((HZ_ENTERPRISE, SH_ENTERPRISE)):
                h, _ = await node.registry.register_holder(
                    SYSTEM, code, f"h{i}", "enterprise", "330100", None
                )
                holders.append(Principal("holder", h.id, "t"))
            provider, _ = await node.registry.register_provider(
                SYSTEM, PROVIDER_A, "p", "computing_centre", None, (), True
            )
            prov = Principal("provider", provider.id, "t")
            vouchers: list[tuple[str, Principal]] = []
            holds: list[str] = []
            for n, step in enumerate(ops):
                kind = step[0]
                try:
                    if kind == "issue":
                        who = holders[int(step[1])]
                        r = await node.issuance.submit(
                            who,
                            Demand(
                                who.subject_id or "",
                                "model_services",
                                int(step[2]),
                                None,
                                "2026-01-01",
                                "2026-12-31",
                            ),
                        )
                        if r["voucher"] is not None:
                            vouchers.append((r["voucher"].id, who))
                    elif kind in ("hold", "redeem") and vouchers:
                        vid, who = vouchers[int(step[1]) % len(vouchers)]
                        _, code = await node.authorizations.authorize(
                            who, vid, provider.id, int(step[3]), clock.now_ms() + 30 * 24 * HOUR
                        )
                        order = Order(code, f"o{n}", int(step[2]), "model_services")
                        fn = node.spending.hold if kind == "hold" else node.spending.redeem
                        holds.append((await fn(prov, order)).hold.id)
                    elif kind == "capture" and holds:
                        hid = holds[int(step[1]) % len(holds)]
                        hold = await node.spending.get_hold(SYSTEM, hid)
                        await node.spending.capture(
                            prov, hid, max(1, hold.amount_fen * int(step[2]) // 100)
                        )
                    elif kind == "void" and holds:
                        await node.spending.void(prov, holds[int(step[1]) % len(holds)])
                    elif kind == "advance":
                        # Time passes; the node's sweeper runs every interval, as in production.
                        clock.advance(int(step[1]) * HOUR)
                        await node.spending.sweep()
                    elif kind == "sweep":
                        await node.spending.sweep()
                    elif kind == "revoke" and vouchers:
                        await node.spending.revoke(
                            SYSTEM, vouchers[int(step[1]) % len(vouchers)][0], "test"
                        )
                except errors.SuanliError:
                    pass  # a refusal is fine; what matters is that it changed nothing wrong
                problems = node.check()
                assert problems == [], f"after step {n} {step}: {problems}"
            # Eventually every hold ends and every voucher expires: the budget comes back whole
            # except what providers captured.
            clock.advance(800 * 24 * HOUR)
            await node.spending.sweep()
            assert node.check() == []
            budget = (await node.views.budget(SYSTEM))[0]
            captured = node.db.run_sync(
                "t",
                lambda c: c.execute("SELECT COALESCE(SUM(captured_fen), 0) FROM holds").fetchone()[
                    0
                ],
            )
            assert budget["committed_fen"] == captured
        finally:
            node.close()


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=25))
def test_any_sequence_keeps_the_invariants(ops: list[tuple[Any, ...]]) -> None:
    asyncio.run(_run(ops))
