"""kill -9 of the issuer or the acquirer between each step of a cross-region redemption.

Each run crashes one node at one point (``node/faults.py``), restarts it, and waits until both
cities agree: every redemption ends the same on both sides, booked exactly once, and every
invariant holds on both nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.conftest import HZ_ENTERPRISE, valid_uscc

GY_CENTRE = valid_uscc("91520100MA6DGY001")
HZ, GY = "330100", "520100"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Cluster]:
    # The first hold must be answered (201) before the crash points: 3 s for the first call.
    with Cluster(tmp_path, [HZ, GY], call_timeout_seconds=3.0).session() as cluster:
        yield cluster


def _prepare(cluster: Cluster, env: dict[str, dict[str, str]]) -> tuple[str, dict[str, object]]:
    cluster.start(env)
    cluster.holder(HZ, "startup", HZ_ENTERPRISE)
    cluster.provider(GY, "centre", GY_CENTRE)
    voucher = cluster.voucher(HZ, "startup", 100_000_000)
    code = cluster.code(HZ, "startup", voucher, GY, "centre", 5_000_000)
    return code, voucher


def _order(code: str, amount: int = 2_000_000) -> dict[str, object]:
    return {
        "code": code,
        "order_id": "K-1",
        "order_amount_fen": amount,
        "compute_class": "model_services",
    }


def _crashed(cluster: Cluster, victim: str) -> None:
    assert cluster[victim].process.wait_exit() == -9
    cluster.restart(victim)


def _final_hold(cluster: Cluster) -> dict[str, object]:
    gy = cluster[GY]
    items = gy.call("GET", "/v1/holds", expect=200)["items"]
    assert len(items) == 1, items
    hold: dict[str, object] = items[0]
    return hold


@pytest.mark.parametrize(
    ("victim", "point"),
    [
        (GY, "acquirer.before_send.redeem"),
        (HZ, "issuer.after_commit.redeem"),
        (GY, "acquirer.before_apply.redeem"),
    ],
)
def test_crash_during_redeem(pair: Cluster, victim: str, point: str) -> None:
    code, voucher = _prepare(pair, {victim: {"SUANLI_CRASH_AT": point}})
    gy = pair[GY]
    status, _ = gy.call_raw("POST", "/v1/redemptions", gy.tokens["centre"], _order(code))
    # The acquirer died mid-request (no answer), or answered 202 while the issuer was down.
    assert status in (0, 202), status
    _crashed(pair, victim)
    pair.wait_agree()
    hold = _final_hold(pair)
    assert hold["state"] == "captured" and hold["captured_fen"] == 600_000
    hz = pair[HZ]
    v = hz.call("GET", f"/v1/vouchers/{voucher['id']}", hz.tokens["startup"], expect=200)["voucher"]
    assert v["captured_fen"] == 600_000 and v["available_fen"] == 30_000_000 - 600_000
    # The provider retrying its request after the crash gets the one redemption back.
    again = gy.call("POST", "/v1/redemptions", gy.tokens["centre"], _order(code), expect=200)
    assert again["hold"]["id"] == hold["id"]
    pair.check_all()


@pytest.mark.parametrize(
    ("victim", "point"),
    [
        (GY, "acquirer.before_send.capture"),
        (HZ, "issuer.after_commit.capture"),
        (GY, "acquirer.before_apply.capture"),
        (GY, "acquirer.before_apply.authorize"),
        (HZ, "issuer.after_commit.authorize"),
    ],
)
def test_crash_during_hold_and_capture(pair: Cluster, victim: str, point: str) -> None:
    code, voucher = _prepare(pair, {victim: {"SUANLI_CRASH_AT": point}})
    gy = pair[GY]
    token = gy.tokens["centre"]
    status, data = gy.call_raw("POST", "/v1/holds", token, _order(code, 10_000_000))
    if point.endswith("authorize"):
        assert status in (0, 202), (status, data)
        _crashed(pair, victim)
        pair.wait_agree()
        hold = _final_hold(pair)
        assert hold["state"] == "held" and hold["amount_fen"] == 3_000_000
    else:
        assert status == 201, data
        hold = data["hold"]
        status, _ = gy.call_raw(
            "POST", f"/v1/holds/{hold['id']}/capture", token, {"amount_fen": 2_000_000}
        )
        assert status in (0, 202), status
        _crashed(pair, victim)
        pair.wait_agree()
    hold_id = _final_hold(pair)["id"]
    captured = gy.call(
        "POST", f"/v1/holds/{hold_id}/capture", token, {"amount_fen": 2_000_000}, expect=200
    )["hold"]
    assert captured["state"] == "captured" and captured["captured_fen"] == 2_000_000
    hz = pair[HZ]
    v = hz.call("GET", f"/v1/vouchers/{voucher['id']}", hz.tokens["startup"], expect=200)["voucher"]
    assert v["captured_fen"] == 2_000_000 and v["held_fen"] == 0
    pair.wait_agree()
    pair.check_all()
