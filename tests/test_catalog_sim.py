"""The offers simulation (node/tools/bench/offers.py) as a test: real catalogs, doors and
publishers over its simulated network, a handful of cities; and how a publisher treats a
peer that does not answer."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from node.clock import SystemClock
from node.tools.bench.offers import build, held, terms
from tests.test_bench import bench_module


def test_the_simulation_runs_every_phase_and_the_city_that_was_away_catches_up() -> None:
    result = bench_module(
        "offers",
        "--nodes",
        "8",
        "--offers",
        "4",
        "--changing",
        "3",
        "--changes",
        "2",
        "--rtt-ms",
        "2",
        "--push-everything",
    )
    assert result["bootstrap"]["requests"] == 8 * 7 == result["bootstrap"]["answers"]
    assert result["one_update"]["requests"] == 7 and result["one_update"]["result"] == 7
    # The hour: three cities push to the six others that are up; the seventh is unreachable.
    assert result["hour_of_changes"]["requests"] == 3 * 6
    assert result["hour_of_changes"]["unreachable_attempts"] == 3
    assert result["catch_up"]["requests"] == 7 and result["catch_up"]["result"] == 6
    assert result["catch_up"]["catalog_equal"] is True
    assert result["anti_entropy_round"]["requests"] == 1
    assert result["catalog_offers_live"] == 8 * 4


async def test_a_peer_that_does_not_answer_is_pushed_to_again_after_a_backoff(
    tmp_path: Path,
) -> None:
    net = await build(tmp_path, 4, 0.0, retry_base_seconds=0.2)
    try:
        cities = list(net.cities.values())
        origin, away = cities[0], cities[3]
        await origin.catalog.publish(
            origin.provider, terms(random.Random(1), SystemClock().now_ms())
        )
        net.down.add(away.region)
        assert await origin.publisher.push() == 2  # the two that are up
        tried = net.count.unreachable
        assert tried == 1
        # At once again: the peer is left alone during its backoff, the others are current.
        assert await origin.publisher.push() == 0 and net.count.unreachable == tried
        net.down.discard(away.region)
        for _ in range(100):  # the backoff is 0.1-0.3 s: at most 5 s of polling
            if await origin.publisher.push() == 1:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the peer was never pushed to again")
        assert origin.region in await held(away)
    finally:
        for city in net.cities.values():
            city.db.close()
