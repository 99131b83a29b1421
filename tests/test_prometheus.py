"""A real Prometheus (Debian's) scraping a running federation: quota-flow series match the
nodes' books, and an alert fires when a node is killed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.cluster import Cluster, free_port
from tests.conftest import HZ_ENTERPRISE, valid_uscc
from tests.proc import wait_until

HZ, GY = "330100", "520100"
RULES = Path(__file__).resolve().parent.parent / "ops" / "prometheus" / "alerts.yml"


def api(port: int, path: str, **query: str) -> Any:
    url = f"http://127.0.0.1:{port}/api/v1/{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return body["data"]


def value(port: int, expr: str) -> float | None:
    result = api(port, "query", query=expr)["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_sees_the_books_and_alerts_on_a_dead_node(tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: `make test` installs Debian's prometheus package"
    cluster = Cluster(tmp_path / "fed", [HZ, GY], call_timeout_seconds=3.0)  # 201 expected
    cluster.start()
    prometheus = None
    try:
        cluster.holder(HZ, "startup", HZ_ENTERPRISE)
        cluster.provider(GY, "gy-centre", valid_uscc("91520100MA6DGY001"))
        gy = cluster[GY]
        v = cluster.voucher(HZ, "startup", 100_000_000)
        code = cluster.code(HZ, "startup", v, GY, "gy-centre", 5_000_000)
        body = {
            "code": code,
            "order_id": "P-1",
            "order_amount_fen": 2_000_000,
            "compute_class": "model_services",
        }
        gy.call("POST", "/v1/redemptions", gy.tokens["gy-centre"], body, expect=201)
        cluster.wait_agree()

        # The shipped rules, with their `for:` delays shortened so the test need not wait minutes.
        rules = tmp_path / "alerts.yml"
        rules.write_text(re.sub(r"for: \d+m", "for: 2s", RULES.read_text()))
        targets = "\n".join(
            f'      - targets: ["127.0.0.1:{m.process.port}"]\n        labels: {{city: {m.name.lower()}}}'
            for m in cluster.members
        )
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {rules}\n"
            f"scrape_configs:\n  - job_name: suanli\n    static_configs:\n{targets}\n"
        )
        port = free_port()
        log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - closed with the process
        prometheus = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def scraped() -> bool:
            try:
                active = api(port, "targets")["activeTargets"]
            except OSError:
                return False
            return len(active) == 2 and all(t["health"] == "up" for t in active)

        wait_until(scraped, "Prometheus to scrape both nodes", timeout=60)
        hz_budget = cluster[HZ].call("GET", "/v1/budget", expect=200)["items"][0]

        def matches() -> bool:
            committed = value(port, 'suanli_budget_committed_fen{city="hangzhou"}')
            flow = value(
                port,
                'sum(suanli_cross_region_fen_total{city="guiyang", issuer="330100", acquirer="520100", outcome="captured"})',
            )
            issuer_view = value(
                port, 'sum(suanli_cross_region_fen_total{city="hangzhou", outcome="captured"})'
            )
            paid = value(
                port,
                'sum(suanli_redemptions_fen_total{city="guiyang", role="acquirer", outcome="captured"})',
            )
            # the same flow from both cities' books, as the dashboard reads it
            books = {
                city: value(
                    port,
                    f'suanli_books_captured_fen{{city="{city}", issuer="330100", acquirer="520100"}}',
                )
                for city in ("hangzhou", "guiyang")
            }
            return (
                committed == hz_budget["committed_fen"]
                and flow == issuer_view == paid == 600_000
                and books == {"hangzhou": 600_000, "guiyang": 600_000}
            )

        wait_until(matches, "Prometheus's quota-flow series to match the books", timeout=30)
        exposure = value(port, 'suanli_exposure_fen{city="hangzhou", peer="520100"}')
        assert exposure == 600_000  # captured in the current window, owed to Guiyang

        cluster.kill(HZ)

        def firing() -> list[dict[str, Any]]:
            return [
                a
                for a in api(port, "alerts")["alerts"]
                if a["labels"]["alertname"] == "SuanliNodeDown" and a["state"] == "firing"
            ]

        alerts = wait_until(firing, "SuanliNodeDown to fire for the killed node", timeout=60)
        assert [a["labels"]["city"] for a in alerts] == ["hangzhou"]
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(timeout=20)
        cluster.close()
