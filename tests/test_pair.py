"""An active/standby pair of node processes (node/standby.py), with real processes under a
steady load of cross-region and local redemptions: kill -9 the active one; the standby takes
over on its own ports; providers' retries succeed there; Guiyang's outbox fails over to
Hangzhou's second endpoint; nothing answered is lost, nothing is applied twice.

On SQLite the two share one data folder (one machine). On PostgreSQL (``make
test-postgres``) each has its own folder, as on two machines, holding the same node.toml and
key, and what they share is the database: the standby waits for the database lease."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from node.tools.processes import ROOT, free_port
from tests import engines
from tests.cluster import http
from tests.proc import NodeProcess, wait_until
from tests.test_federation import HZ_CENTRE, order, pair

HZ, GY = "330100", "520100"


def test_the_standby_takes_over_when_the_active_node_dies(tmp_path: Path) -> None:
    with pair(tmp_path, endpoints=2) as cluster:
        hz, gy = cluster[HZ], cluster[GY]
        cluster.provider(HZ, "hz-centre", HZ_CENTRE)
        standby_http, standby_grpc = free_port(), free_port()
        hz.more[0].target_port = standby_grpc  # Hangzhou's second endpoint is the standby
        folder = _second_machine(hz.data, tmp_path / "hz-standby")
        with open(folder / "standby.log", "ab") as log:
            standby = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "node.cli",
                    "serve",
                    "--data",
                    str(folder),
                    "--port",
                    str(standby_http),
                    "--grpc-port",
                    str(standby_grpc),
                    "--standby",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        second = NodeProcess(folder)
        second.proc, second.port = standby, standby_http
        try:
            _standby_answers(second.url, hz.process.port, hz.tokens)
            assert _grpc_health(standby_grpc) == "NOT_SERVING"
            assert _grpc_health(hz.grpc_port) == "SERVING"
            _kill_under_load(cluster, hz, gy, second)
            assert _grpc_health(standby_grpc) == "SERVING"  # it is the active one now
        finally:
            second.stop()


def _second_machine(data: Path, folder: Path) -> Path:
    """The standby's data folder: the active one's on SQLite; on PostgreSQL a copy of its
    configuration and keys (what an operator copies to the second machine), not of its books."""
    if not engines.POSTGRES:
        return data
    shutil.copytree(data, folder, ignore=shutil.ignore_patterns("serve.*", "*.log", "*.db*"))
    return folder


def _grpc_health(port: int) -> str:
    """What the standard gRPC health service on ``port`` says of the federation service."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="suanli.federation.v1.Federation"), timeout=5
        )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))


def _standby_answers(url: str, active_port: int, tokens: dict[str, str]) -> None:
    """While the active one serves: /health says standby and where the active one is; a
    write is refused with 503 not_active naming it; nothing is written."""

    def standing_by() -> Any:
        status, body = http("GET", url + "/health")
        return body if status == 200 and isinstance(body, dict) else None

    health = wait_until(standing_by, "the standby to answer")
    assert health["status"] == "standby" and f":{active_port}" in health["active"], health
    status, body = http("POST", url + "/v1/demands", tokens["startup"], {"x": 1})
    assert status == 503 and body["error"]["code"] == "not_active", body
    assert f":{active_port}" in body["error"]["message"]


def _kill_under_load(cluster: Any, hz: Any, gy: Any, second: NodeProcess) -> None:
    """Cross-region redemptions at Guiyang and local ones at Hangzhou, one every 50 ms from
    two threads; Hangzhou's active process is killed after a third of them."""
    voucher = cluster.voucher(HZ, "startup", 100_000_000)
    rounds = 12
    remote = [cluster.code(HZ, "startup", voucher, GY, "gy-centre", 100_000) for _ in range(rounds)]
    local = [cluster.code(HZ, "startup", voucher, HZ, "hz-centre", 100_000) for _ in range(rounds)]
    answers: dict[str, list[int]] = {"remote": [], "local": []}
    killed = threading.Event()

    def cross_region() -> None:
        for n, code in enumerate(remote):
            status, body = http(
                "POST",
                gy.url + "/v1/redemptions",
                gy.tokens["gy-centre"],
                order(code, f"PAIR-GY-{n}", 300_000),
            )
            assert status in (201, 202), (status, body)  # 202: Hangzhou's answer is awaited
            answers["remote"].append(status)
            time.sleep(0.05)

    def here() -> None:
        for n, code in enumerate(local):
            if n == rounds // 3:
                killed.set()
            # A provider's client: retry on the other address of the pair until answered.
            deadline = time.monotonic() + 30
            urls = [hz.process.url, second.url]
            while True:
                url = urls[0]
                status, body = http(
                    "POST",
                    url + "/v1/redemptions",
                    hz.tokens["hz-centre"],
                    order(code, f"PAIR-HZ-{n}", 300_000),
                    timeout=5,
                )
                if status in (200, 201):
                    break
                assert time.monotonic() < deadline, (status, body)
                urls.reverse()  # refused by the dead one, or not_active from the standby
                time.sleep(0.05)
            answers["local"].append(status)
            time.sleep(0.05)

    threads = [threading.Thread(target=cross_region), threading.Thread(target=here)]
    for t in threads:
        t.start()
    assert killed.wait(30)
    hz.process.kill()
    died = time.monotonic()

    def took_over() -> bool:
        status, body = http("GET", second.url + "/health")
        return status == 200 and isinstance(body, dict) and body.get("role") == "active"

    wait_until(took_over, "the standby to take over")
    takeover = time.monotonic() - died
    for t in threads:
        t.join(60)
    print(f"takeover: {takeover:.2f} s from kill -9 to the standby's /health ok; {answers}")
    assert len(answers["remote"]) == rounds and len(answers["local"]) == rounds, answers
    # The standby serves Hangzhou from now on: the cluster checks it there.
    hz.process = second
    cluster.wait_agree(timeout=60)
    with hz.db() as conn:
        rows = conn.execute(
            "SELECT acquirer_region, COUNT(*), SUM(captured_fen) FROM holds "
            "WHERE state = 'captured' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    # Every order once, at 30% of 300,000 fen, on both sides.
    assert [tuple(r) for r in rows] == [
        (HZ, rounds, rounds * 90_000),
        (GY, rounds, rounds * 90_000),
    ]
    cluster.check_all()
