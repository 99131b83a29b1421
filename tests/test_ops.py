"""Monitoring configuration: promtool checks the Prometheus config and alert rules and runs the
rules' unit tests; every expression of the alerts and the Grafana dashboard names a metric the
node really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from node.node import Node

OPS = Path(__file__).resolve().parent.parent / "ops"
PROM = OPS / "prometheus"
METRIC = re.compile(r"\b(suanli_[a-z0-9_]+)")


def promtool(*args: str) -> str:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: `make test` installs Debian's prometheus package"
    result = subprocess.run([tool, *args], cwd=PROM, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_promtool_checks_config_and_rules() -> None:
    assert "SUCCESS: 11 rules found" in promtool("check", "rules", "alerts.yml")
    assert "valid prometheus config" in promtool("check", "config", "prometheus.yml")


def test_alert_rules_fire_when_they_should() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")


def exported(node: Node) -> set[str]:
    names = set()
    for family in node.metrics.registry.collect():
        names.add(family.name)
        names.update(family.name + s for s in ("_total", "_bucket", "_count", "_sum", "_created"))
    return names


def test_dashboard_and_alerts_name_real_metrics(node: Node) -> None:
    names = exported(node)
    dashboard = json.loads((OPS / "grafana" / "suanli-quota-flows.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 15
    used = {m for e in exprs for m in METRIC.findall(e)}
    used |= set(METRIC.findall((PROM / "alerts.yml").read_text()))
    assert used, "no suanli_ metric in the expressions"
    assert used <= names, f"not exported: {sorted(used - names)}"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["title"]
    # The quota flows the issue names are on the dashboard.
    for needed in (
        "suanli_budget_committed_fen",
        "suanli_issued_fen_total",
        "suanli_books_captured_fen",
        "suanli_exposure_fen",
        "suanli_settlement_position_fen",
        "suanli_peer_up",
    ):
        assert needed in used
