"""Cross-region redemption between real node processes over signed gRPC on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.conftest import HZ_ENTERPRISE, valid_uscc

GY_CENTRE = valid_uscc("91520100MA6DGY001")
HZ_CENTRE = valid_uscc("91330100MA2B3C4D5")


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, ["330100", "520100"])
    cluster.start()
    try:
        cluster.holder("330100", "startup", HZ_ENTERPRISE)
        cluster.provider("520100", "gy-centre", GY_CENTRE)
        cluster.provider("330100", "hz-centre", HZ_CENTRE)
        yield cluster
        cluster.check_all()
    except BaseException:
        print(f"data kept in {tmp_path}\n--- merged logs ---\n{cluster.logs()[-8000:]}")
        raise
    finally:
        cluster.close()


def order(code: str, order_id: str, amount: int) -> dict[str, object]:
    return {
        "code": code,
        "order_id": order_id,
        "order_amount_fen": amount,
        "compute_class": "model_services",
    }


def test_cross_region_redeem(fed: Cluster) -> None:
    """A Hangzhou start-up's voucher pays part of a Guiyang cluster's order."""
    hz, gy = fed["330100"], fed["520100"]
    v = fed.voucher("330100", "startup", 100_000_000)  # ¥1,000,000 → ¥300,000 at 30%
    code = fed.code("330100", "startup", v, "520100", "gy-centre", 5_000_000)
    assert code.startswith("sac_330100_")
    started = time.monotonic()
    data = gy.call(
        "POST",
        "/v1/redemptions",
        gy.tokens["gy-centre"],
        order(code, "GY-1", 2_000_000),
        expect=201,
    )
    elapsed = time.monotonic() - started
    hold = data["hold"]
    assert (
        hold["id"].startswith("rh_")
        and hold["state"] == "captured"
        and hold["captured_fen"] == 600_000
    )
    assert (
        hold["issuer_region"] == "330100"
        and hold["settlement_window"] == f"{v['issued_at'][:4]}-Q4"
    ) or hold["settlement_window"]
    # The issuer's books: the voucher is spent, the money is owed to Guiyang.
    voucher = hz.call("GET", f"/v1/vouchers/{v['id']}", hz.tokens["startup"], expect=200)["voucher"]
    assert voucher["captured_fen"] == 600_000 and voucher["available_fen"] == 30_000_000 - 600_000
    # The same request again is the same answer; the same order again with a new code is refused.
    again = gy.call(
        "POST",
        "/v1/redemptions",
        gy.tokens["gy-centre"],
        order(code, "GY-1", 2_000_000),
        expect=200,
    )
    assert again["replayed"] and again["hold"]["id"] == hold["id"]
    code2 = fed.code("330100", "startup", v, "520100", "gy-centre", 5_000_000)
    refused = gy.call(
        "POST",
        "/v1/redemptions",
        gy.tokens["gy-centre"],
        order(code2, "GY-1", 2_000_000),
        expect=409,
    )
    assert refused["error"]["code"] == "order_already_subsidised"
    fed.wait_agree()
    assert elapsed < 5


def test_cross_region_hold_capture_void(fed: Cluster) -> None:
    gy = fed["520100"]
    token = gy.tokens["gy-centre"]
    v = fed.voucher("330100", "startup", 100_000_000)
    code = fed.code("330100", "startup", v, "520100", "gy-centre", 5_000_000)
    hold = gy.call("POST", "/v1/holds", token, order(code, "GY-2", 10_000_000), expect=201)["hold"]
    assert hold["state"] == "held" and hold["amount_fen"] == 3_000_000
    too_much = gy.call(
        "POST", f"/v1/holds/{hold['id']}/capture", token, {"amount_fen": 3_000_001}, expect=422
    )
    assert too_much["error"]["code"] == "capture_exceeds_hold"
    captured = gy.call(
        "POST", f"/v1/holds/{hold['id']}/capture", token, {"amount_fen": 2_500_000}, expect=200
    )["hold"]
    assert captured["state"] == "captured" and captured["captured_fen"] == 2_500_000
    code2 = fed.code("330100", "startup", v, "520100", "gy-centre", 5_000_000)
    held = gy.call("POST", "/v1/holds", token, order(code2, "GY-3", 1_000_000), expect=201)["hold"]
    voided = gy.call("POST", f"/v1/holds/{held['id']}/void", token, expect=200)["hold"]
    assert voided["state"] == "voided"
    voucher = fed["330100"].call("GET", f"/v1/vouchers/{v['id']}", fed["330100"].tokens["startup"])[
        "voucher"
    ]
    assert voucher["captured_fen"] == 2_500_000 and voucher["held_fen"] == 0
    fed.wait_agree()


def test_issuer_refusals_reach_the_provider(fed: Cluster) -> None:
    gy = fed["520100"]
    token = gy.tokens["gy-centre"]
    v = fed.voucher("330100", "startup", 100_000_000)
    # A code for the Hangzhou centre cannot be used by the Guiyang one.
    wrong = fed.code("330100", "startup", v, "330100", "hz-centre", 1_000)
    err = gy.call("POST", "/v1/redemptions", token, order(wrong, "GY-4", 1_000_000), expect=403)
    assert err["error"]["code"] == "wrong_provider"
    unknown = gy.call(
        "POST", "/v1/redemptions", token, order("sac_330100_nothing", "GY-5", 1_000_000), expect=403
    )
    assert unknown["error"]["code"] == "authorization_invalid"
    # The refused order stays free: a valid code for it now works.
    good = fed.code("330100", "startup", v, "520100", "gy-centre", 1_000_000)
    gy.call("POST", "/v1/redemptions", token, order(good, "GY-5", 1_000_000), expect=201)
    fed.wait_agree()
