"""Cross-region redemption between real node processes over signed gRPC on loopback."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import Cluster
from tests.conftest import HZ_ENTERPRISE, valid_uscc

GY_CENTRE = valid_uscc("91520100MA6DGY001")
HZ_REGION = "330100"
HZ_CENTRE = valid_uscc("91330100MA2B3C4D5")


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Cluster]:
    # These tests expect the issuer's answer to the first call (which opens the connection):
    # 3 s, not the cluster's 1 s, so that a slow spell of the machine does not turn it into 202.
    with Cluster(tmp_path, ["330100", "520100"], call_timeout_seconds=3.0).session() as cluster:
        cluster.start()
        cluster.holder("330100", "startup", HZ_ENTERPRISE)
        cluster.provider("520100", "gy-centre", GY_CENTRE)
        cluster.provider("330100", "hz-centre", HZ_CENTRE)
        yield cluster
        cluster.check_all()


@contextlib.contextmanager
def pair(
    tmp_path: Path, before_start: Callable[[Cluster], None] | None = None, **options: Any
) -> Iterator[Cluster]:
    """Hangzhou and Guiyang, started, with a Hangzhou start-up and a Guiyang centre."""
    cluster = Cluster(tmp_path, [HZ_REGION, "520100"], **options)
    if before_start is not None:
        before_start(cluster)
    with cluster.session():
        cluster.start()
        cluster.holder(HZ_REGION, "startup", HZ_ENTERPRISE)
        cluster.provider("520100", "gy-centre", GY_CENTRE)
        yield cluster


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
    # Guiyang keeps Hangzhou's signed receipt: evidence it can verify with Hangzhou's card alone.
    from federation.cards import parse_card
    from federation.envelope import TAG
    from federation.proto.v1 import federation_pb2 as pb
    from node.keys import verify

    card = parse_card((gy.data / f"{HZ_REGION}.card").read_text())
    public = {k.key_id: bytes(k.public_key) for k in card.card.keys}
    with gy.db() as conn:
        rows = conn.execute(
            "SELECT envelope FROM receipts WHERE remote_hold_id = ?", (hold["id"],)
        ).fetchall()
    assert len(rows) == 1
    envelope = pb.Envelope.FromString(rows[0][0])
    assert verify(public[envelope.key_id], TAG, envelope.body, envelope.signature)
    receipt = pb.Receipt.FromString(pb.Body.FromString(envelope.body).payload)
    assert receipt.state == "captured" and receipt.captured_fen == 600_000


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
    # The refused code is still good at the Hangzhou centre: Guiyang keeps no copy of it (nor of
    # any other code) once the issuer has answered.
    with gy.db() as conn:
        outbox = conn.execute("SELECT state, payload FROM outbox").fetchall()
    assert len(outbox) == 3 and all(s == "done" and p == b"" for s, p in outbox)


QD_ENTERPRISE = valid_uscc("91370200MA3QD0001")
GY_ENTERPRISE = valid_uscc("91520100MA6GYE001")
QD, HZ, GY = "370200", "330100", "520100"


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[Cluster]:
    with Cluster(tmp_path, [HZ, QD, GY], call_timeout_seconds=3.0).session() as cluster:
        cluster.start()
        cluster.holder(HZ, "startup", HZ_ENTERPRISE)
        cluster.holder(QD, "qd-co", QD_ENTERPRISE)
        cluster.holder(GY, "gy-co", GY_ENTERPRISE)
        cluster.provider(GY, "gy-centre", GY_CENTRE)
        yield cluster
        cluster.check_all()


def test_a_dead_peer_does_not_slow_other_traffic(trio: Cluster) -> None:
    import threading

    gy = trio[GY]
    token = gy.tokens["gy-centre"]
    qd_voucher = trio.voucher(QD, "qd-co", 100_000_000)
    qd_code = trio.code(QD, "qd-co", qd_voucher, GY, "gy-centre", 1_000_000)
    hz_voucher = trio.voucher(HZ, "startup", 100_000_000)
    gy_voucher = trio.voucher(GY, "gy-co", 100_000_000)
    hz_codes = [trio.code(HZ, "startup", hz_voucher, GY, "gy-centre", 10_000) for _ in range(5)]
    gy_codes = [trio.code(GY, "gy-co", gy_voucher, GY, "gy-centre", 10_000) for _ in range(5)]
    trio.cut(QD)
    stuck: dict[str, object] = {}

    def to_qingdao() -> None:
        started = time.monotonic()
        stuck["status"], stuck["data"] = gy.call_raw(
            "POST", "/v1/redemptions", token, order(qd_code, "Q-1", 1_000_000)
        )
        stuck["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=to_qingdao)
    thread.start()
    time.sleep(0.1)  # let the Qingdao call be in flight first: the point is what happens meanwhile
    latencies = []
    for i, code in enumerate([*hz_codes, *gy_codes]):
        started = time.monotonic()
        gy.call("POST", "/v1/redemptions", token, order(code, f"OK-{i}", 10_000), expect=201)
        latencies.append(time.monotonic() - started)
    thread.join(timeout=30)
    assert stuck["status"] == 202, stuck  # the Qingdao one is pending, not failed
    assert max(latencies) < 1.0, latencies  # while it waited out its 3 s deadline, nothing else did
    assert stuck["seconds"] >= 2.5  # type: ignore[operator]
    trio.heal(QD)
    trio.wait_agree(timeout=30)
    held = gy.call("GET", f"/v1/holds/{stuck['data']['hold']['id']}", token, expect=200)  # type: ignore[index]
    assert held["state"] == "captured" and held["captured_fen"] == 200_000


def test_policies_between_cities(trio: Cluster) -> None:
    from tests.proc import suanli, wait_until

    gy, hz = trio[GY], trio[HZ]
    token = gy.tokens["gy-centre"]
    v = trio.voucher(HZ, "startup", 100_000_000)
    code = trio.code(HZ, "startup", v, GY, "gy-centre", 30_000_000)
    # Guiyang stops accepting Hangzhou's vouchers: refused at home, nothing sent.
    suanli("peer", "set", "--data", str(gy.data), HZ, "--inbound", "off")
    wait_until(
        lambda: gy.call_raw("POST", "/v1/holds", token, order(code, "P-1", 1_000_000))[0] == 403,
        "Guiyang to apply its new inbound rule",
    )
    err = gy.call("POST", "/v1/holds", token, order(code, "P-1", 1_000_000), expect=403)
    assert err["error"]["code"] == "inbound_not_allowed"
    suanli("peer", "set", "--data", str(gy.data), HZ, "--inbound", "on")
    # Hangzhou caps what it may owe Guiyang in a window: ¥1,000.
    suanli("peer", "set", "--data", str(hz.data), GY, "--exposure-cap-fen", "100000")
    wait_until(
        lambda: gy.call_raw("POST", "/v1/holds", token, order(code, "P-2", 1_000_000))[0] == 409,
        "the exposure cap",
    )
    err = gy.call("POST", "/v1/holds", token, order(code, "P-2", 1_000_000), expect=409)
    assert err["error"]["code"] == "exposure_cap_exceeded"
    ok = gy.call(
        "POST", "/v1/redemptions", token, order(code, "P-3", 300_000), expect=201
    )  # ¥900 fits
    assert ok["hold"]["captured_fen"] == 90_000
    # Hangzhou stops letting its vouchers travel to Guiyang: no new code can name a Guiyang provider.
    suanli("peer", "set", "--data", str(hz.data), GY, "--outbound", "off")

    def refused_code() -> bool:
        body = {
            "provider_id": gy.ids["gy-centre"],
            "provider_region": GY,
            "max_fen": 1,
            "expires_at": v["expires_at"],
        }
        status, data = hz.call_raw(
            "POST", f"/v1/vouchers/{v['id']}/authorizations", hz.tokens["startup"], body
        )
        return status == 403 and data["error"]["code"] == "outbound_not_allowed"

    wait_until(refused_code, "Hangzhou to apply its outbound rule")
    trio.wait_agree()


def test_hold_expires_at_the_issuer(tmp_path: Path) -> None:
    def short_holds(region: str, text: str) -> str:
        return text.replace("hold_expiry_hours = 72", "hold_expiry_seconds = 2")

    with pair(tmp_path, policy_edit=short_holds) as cluster:
        gy = cluster[GY]
        v = cluster.voucher(HZ, "startup", 100_000_000)
        code = cluster.code(HZ, "startup", v, GY, "gy-centre", 5_000_000)
        hold = gy.call(
            "POST", "/v1/holds", gy.tokens["gy-centre"], order(code, "X-1", 1_000_000), expect=201
        )["hold"]
        from tests.proc import wait_until

        hz = cluster[HZ]

        def expired_at_both() -> bool:
            # Each city's own sweeper acts on its own tick: wait for both.
            here = gy.call("GET", f"/v1/holds/{hold['id']}", gy.tokens["gy-centre"])["state"]
            there = hz.call("GET", f"/v1/vouchers/{v['id']}", hz.tokens["startup"])["voucher"]
            return here == "expired" and there["held_fen"] == 0

        wait_until(expired_at_both, "the hold to expire at both cities", timeout=15)
        voucher = hz.call("GET", f"/v1/vouchers/{v['id']}", hz.tokens["startup"], expect=200)[
            "voucher"
        ]
        assert voucher["available_fen"] == voucher["face_fen"]
        err = gy.call(
            "POST",
            f"/v1/holds/{hold['id']}/capture",
            gy.tokens["gy-centre"],
            {"amount_fen": 1},
            expect=409,
        )
        assert err["error"]["code"] == "hold_not_open"
        cluster.wait_agree()
        cluster.check_all()


def test_mutual_tls(tmp_path: Path) -> None:
    """With TLS configured by file paths, nodes federate; a client without a certificate
    signed by the federation's CA, or without TLS, gets nothing."""
    import asyncio

    import grpc

    from federation.proto.v1 import federation_pb2 as pb
    from federation.proto.v1 import federation_pb2_grpc as pb_grpc

    with pair(tmp_path, mutual_tls=True) as cluster:
        gy = cluster[GY]
        v = cluster.voucher(HZ, "startup", 100_000_000)
        code = cluster.code(HZ, "startup", v, GY, "gy-centre", 5_000_000)
        done = gy.call(
            "POST",
            "/v1/redemptions",
            gy.tokens["gy-centre"],
            order(code, "TLS-1", 1_000_000),
            expect=201,
        )
        assert done["hold"]["state"] == "captured"
        target = f"127.0.0.1:{cluster[HZ].grpc_port}"
        ca = (tmp_path / "tls" / "ca.pem").read_bytes()

        async def try_card(tls: bool) -> grpc.StatusCode | None:
            if tls:
                channel = grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(ca))
            else:
                channel = grpc.aio.insecure_channel(target)
            try:
                await pb_grpc.FederationStub(channel).GetCard(pb.CardQuery(), timeout=2)
                return None
            except grpc.aio.AioRpcError as err:
                return err.code()
            finally:
                await channel.close()

        no_client_cert = asyncio.run(try_card(True))
        plaintext = asyncio.run(try_card(False))
        assert (
            no_client_cert == grpc.StatusCode.UNAVAILABLE
            and plaintext == grpc.StatusCode.UNAVAILABLE
        )
        cluster.wait_agree()
        cluster.check_all()


def test_key_rotation_is_announced_and_revocation_honoured(tmp_path: Path) -> None:
    import asyncio
    import json

    import grpc

    from federation.envelope import seal
    from federation.proto.v1 import federation_pb2 as pb
    from federation.proto.v1 import federation_pb2_grpc as pb_grpc
    from node.keys import NodeKey
    from tests.proc import suanli, wait_until

    with pair(tmp_path) as cluster:
        hz, gy = cluster[HZ], cluster[GY]
        before = cluster.voucher(HZ, "startup", 100_000_000)  # signed with the first key
        old = json.loads(suanli("key", "list", "--data", str(hz.data)).stdout)["key_id"]
        suanli("key", "rotate", "--data", str(hz.data), "--overlap-hours", "1")

        def gy_keys() -> list[tuple[str, int, int]]:
            with gy.db() as conn:
                return [
                    tuple(r)
                    for r in conn.execute(
                        "SELECT key_id, not_after, revoked FROM peer_keys WHERE region = ? ORDER BY not_before",
                        (HZ,),
                    )
                ]

        wait_until(lambda: len(gy_keys()) == 2, "Guiyang to learn Hangzhou's new key")
        # Once Guiyang (the only peer) has the new card, the old key gets its end: a new card.
        wait_until(lambda: gy_keys()[0][1] > 0, "Guiyang to learn the old key's end")
        assert gy_keys()[0][0] == old
        new = gy_keys()[1][0]

        def states_at_gy() -> dict[str, str]:
            rows = suanli("peer", "status", "--data", str(gy.data), "--json").stdout.splitlines()
            row = {r["region"]: r for r in map(json.loads, rows)}[HZ]
            return {k["key_id"]: k["state"] for k in row["keys"]}

        # Where each key is in its rotation, as Guiyang's operators see it (the peers page).
        assert states_at_gy() == {old: "retiring", new: "current"}
        # Restarted, Hangzhou signs with the new key; Guiyang verifies its receipts with it.
        hz.process.stop()
        cluster.restart(HZ)
        after = cluster.voucher(HZ, "startup", 100_000_000)
        code = cluster.code(HZ, "startup", after, GY, "gy-centre", 5_000_000)
        gy.call(
            "POST",
            "/v1/redemptions",
            gy.tokens["gy-centre"],
            order(code, "R-1", 1_000_000),
            expect=201,
        )
        with hz.db() as conn:
            signers = dict(conn.execute("SELECT id, key_id FROM vouchers").fetchall())
        assert signers == {before["id"]: old, after["id"]: new}
        # Revoking the retired key: Guiyang is told, and refuses anything signed with it.
        suanli("key", "revoke", "--data", str(hz.data), old)
        wait_until(lambda: gy_keys()[0][2] == 1, "Guiyang to learn of the revocation")
        assert states_at_gy() == {old: "revoked", new: "current"}
        retired = NodeKey.load(hz.data / "keys" / f"{old}.key")

        async def forged() -> str:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{gy.grpc_port}") as channel:
                envelope = seal(
                    retired, HZ, GY, "m_forged", pb.AUTHORIZE, b"", time.time_ns() // 1_000_000
                )
                try:
                    await pb_grpc.FederationStub(channel).Authorize(
                        pb.Envelope.FromString(envelope), timeout=5
                    )
                except grpc.aio.AioRpcError as err:
                    return dict(err.trailing_metadata() or ()).get("suanli-code", "")
            return "accepted"

        assert asyncio.run(forged()) == "key_revoked"
        cluster.wait_agree()
        cluster.check_all()  # vouchers signed with the revoked key still verify offline


def test_key_rotation_never_cuts_a_peer_off(tmp_path: Path) -> None:
    """Rotation with no overlap while a peer is down, then a restart: the old key keeps no end
    until the peer has the new card, which it gets (signed with the old key) once back; the
    old key cannot be revoked before that without --force. Both directions work throughout.
    (The new card used to be signed with a key no peer knew: the node was cut off.)"""
    import json

    from tests.proc import suanli, wait_until

    def keys(data: Path) -> dict[str, dict[str, object]]:
        out = suanli("key", "list", "--data", str(data)).stdout.splitlines()
        return {k["key_id"]: k for k in map(json.loads, out)}

    def status() -> dict[str, object]:
        rows = suanli("peer", "status", "--data", str(hz.data), "--json").stdout.splitlines()
        return {r["region"]: r for r in map(json.loads, rows)}[GY]

    with pair(tmp_path) as cluster:
        hz, gy = cluster[HZ], cluster[GY]
        old = next(k for k, v in keys(hz.data).items() if v["current"])
        gy.process.stop()
        suanli("key", "rotate", "--data", str(hz.data), "--overlap-hours", "0")
        hz.process.stop()
        cluster.restart(HZ)  # signs with the new key from now on
        assert keys(hz.data)[old]["not_after"] is None  # no end while Guiyang lacks the card
        assert status()["acknowledged"] is False
        shown = suanli("peer", "status", "--data", str(hz.data)).stdout
        assert "NOT YET" in shown and "520100" in shown
        early = suanli("key", "revoke", "--data", str(hz.data), old, check=False)
        assert early.returncode == 2 and "520100" in early.stderr and "--force" in early.stderr

        cluster.restart(GY)  # away longer than the overlap (zero): it still learns the key
        wait_until(lambda: status()["acknowledged"], "Guiyang to acknowledge the new card")
        wait_until(
            lambda: keys(hz.data)[old]["not_after"] is not None and status()["acknowledged"],
            "the old key's end, announced once Guiyang had the new card",
        )
        cluster.redeem_across(HZ, "startup", GY, "gy-centre", "K-1")  # the new key signs
        suanli("key", "revoke", "--data", str(hz.data), old)  # now it may go
        cluster.wait_agree()
        cluster.check_all()


def test_json_logs_link_a_rest_call_to_its_federation_messages(tmp_path: Path) -> None:
    import json

    def json_logs(cluster: Cluster) -> None:
        for m in cluster.members:
            toml = m.data / "node.toml"
            toml.write_text(toml.read_text().replace('format = "text"', 'format = "json"'))

    with pair(tmp_path, before_start=json_logs) as cluster:
        logs = {m.region: m.process for m in cluster.members}
        gy = cluster[GY]
        v = cluster.voucher(HZ, "startup", 100_000_000)
        code = cluster.code(HZ, "startup", v, GY, "gy-centre", 5_000_000)
        import urllib.request

        req = urllib.request.Request(
            gy.url + "/v1/redemptions",
            data=json.dumps(order(code, "LOG-1", 1_000_000)).encode(),
            headers={
                "Authorization": f"Bearer {gy.tokens['gy-centre']}",
                "Content-Type": "application/json",
                "X-Request-Id": "provider-req-42",
            },
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 201 and resp.headers["X-Request-Id"] == "provider-req-42"
        entries = [
            json.loads(line) for line in gy.process.log().splitlines() if line.startswith("{")
        ]
        linked = [e for e in entries if e["request_id"] == "provider-req-42"]
        assert linked and all(e["region"] == GY and e["ts"].endswith("Z") for e in linked)
        assert any("REDEEM m_" in e["message"] and "to 330100" in e["message"] for e in linked)
        # The issuer's line for that message carries the provider's request id (sent beside the
        # signed body): one jq line follows the redemption through both cities.
        issued = [
            json.loads(line)
            for line in cluster[HZ].process.log().splitlines()
            if line.startswith("{")
        ]
        followed = [e for e in issued if e["request_id"] == "provider-req-42"]
        assert any(
            e["message"].startswith("accepted REDEEM m_")
            and "from 520100: receipt captured 300000 fen, hold hd_" in e["message"]
            for e in followed
        ), [e["message"] for e in issued]
        generated = gy.call_raw("GET", "/health")
        assert generated[0] == 200
        # The issuer stops while Guiyang's redemption stream to it is open.
        cluster[HZ].process.terminate()
        cluster[HZ].process.wait_stopped()
    # Still one JSON object per line, tracebacks included as a field (gRPC used to print the
    # stream's cancellation as a raw traceback on stderr after its ERROR line).
    for region, process in logs.items():
        for line in process.log().splitlines():
            assert line.startswith("{") and line.endswith("}"), f"{region}: not JSON: {line!r}"
            assert json.loads(line)["region"] == region, line


def test_a_peer_with_two_endpoints_is_reached_on_either(tmp_path: Path) -> None:
    """Hangzhou's card lists two endpoints (docs/protocol.md §6). With the first cut, Guiyang's
    redemptions reach Hangzhou on the second; with the second cut and the first healed, on the
    first again. Every capture is booked once on both sides."""
    import json

    from tests.proc import suanli, wait_until

    with pair(tmp_path, endpoints=2) as cluster:
        hz, gy = cluster[HZ_REGION], cluster["520100"]
        second = f"127.0.0.1:{hz.more[0].port}"
        # Guiyang holds both, in the card's order.
        rows = suanli("peer", "list", "--data", str(gy.data)).stdout.splitlines()
        listed = {r["region"]: r for r in map(json.loads, rows)}[HZ_REGION]
        assert listed["endpoints"] == [f"127.0.0.1:{hz.proxy.port}", second]
        voucher = cluster.voucher(HZ_REGION, "startup", 100_000_000)
        hz.proxy.set_cut(True)
        for n in range(2):
            code = cluster.code(HZ_REGION, "startup", voucher, "520100", "gy-centre", 1_000_000)
            gy.call(
                "POST",
                "/v1/redemptions",
                gy.tokens["gy-centre"],
                order(code, f"EP-{n}", 1_000_000),
                expect=201,
            )
        hz.proxy.set_cut(False)
        hz.more[0].set_cut(True)
        code = cluster.code(HZ_REGION, "startup", voucher, "520100", "gy-centre", 1_000_000)
        gy.call(
            "POST",
            "/v1/redemptions",
            gy.tokens["gy-centre"],
            order(code, "EP-2", 1_000_000),
            expect=201,
        )
        hz.more[0].set_cut(False)
        # Hangzhou's operator puts the second first: a new card, pushed; Guiyang takes it.
        first = f"127.0.0.1:{hz.proxy.port}"
        toml = hz.data / "node.toml"
        toml.write_text(
            toml.read_text().replace(f'["{first}", "{second}"]', f'["{second}", "{first}"]')
        )
        hz.process.stop()
        cluster.restart(HZ_REGION)

        def gy_endpoints() -> list[str]:
            rows = suanli("peer", "list", "--data", str(gy.data)).stdout.splitlines()
            return list({r["region"]: r for r in map(json.loads, rows)}[HZ_REGION]["endpoints"])

        wait_until(lambda: gy_endpoints() == [second, first], "Guiyang to take the new card")
        with hz.db() as conn:
            captured = conn.execute(
                "SELECT COUNT(*), SUM(captured_fen) FROM holds WHERE acquirer_region = '520100' "
                "AND state = 'captured'"
            ).fetchone()
        assert tuple(captured) == (3, 3 * 300_000)
        cluster.wait_agree()
        cluster.check_all()
