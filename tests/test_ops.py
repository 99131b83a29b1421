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
    assert "SUCCESS: 14 rules found" in promtool("check", "rules", "alerts.yml")
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


def test_the_systemd_unit_verifies_and_is_rated_ok(tmp_path: Path) -> None:
    """systemd-analyze verify finds nothing to say about the unit, and security rates its
    exposure OK or better (it was 8.5 EXPOSED). The unit is checked with ExecStart pointed at
    this environment's suanli (verify wants the binary to exist); nothing else is changed.
    Not tested here: running it under systemd (these machines have no systemd as PID 1)."""
    import sys

    analyze = shutil.which("systemd-analyze")
    assert analyze, "make tools installs Debian's systemd (systemd-analyze)"
    unit = (OPS / "systemd" / "suanli.service").read_text()
    suanli = Path(sys.executable).parent / "suanli"
    assert suanli.exists()
    checked = tmp_path / "suanli.service"
    checked.write_text(unit.replace("/opt/suanli/bin/suanli", str(suanli)))
    verify = subprocess.run(
        [analyze, "verify", str(checked)], capture_output=True, text=True, timeout=60
    )
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    rated = subprocess.run(
        [analyze, "security", "--offline=true", str(checked)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d) (\w+)", rated.stdout)
    assert found, rated.stdout[-500:] + rated.stderr
    assert float(found.group(1)) < 2.0 and found.group(2) in ("OK", "SAFE"), found.group(0)
    for needed in (
        "StateDirectory=suanli",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
    ):
        assert needed in unit


def test_the_overview_notices_use_the_alert_rules_thresholds() -> None:
    """The operators' overview lists what needs attention by the same conditions as the alert
    rules (node/domain/attention.py): a threshold changed in one place must change in both."""
    import yaml  # schemathesis's dependency

    from node.domain import attention as a

    groups = yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]
    rules = {r["alert"]: " ".join(r["expr"].split()) for g in groups for r in g["rules"]}
    expected = {
        "SuanliBudgetNearlyExhausted": f"< {a.BUDGET_LOW_SHARE:.2f}",
        "SuanliExposureNearCap": f"> {a.EXPOSURE_NEAR_SHARE}",
        "SuanliOutboxGrowing": f"> {a.OUTBOX_GROWING}",
        "SuanliOutboxStuck": f"> {a.OUTBOX_STUCK_SECONDS}",
        "SuanliPayoutsOverdue": f"> {a.PAYOUTS_OVERDUE_SECONDS // 86400} * 86400",
        "SuanliSettlementOverdue": f"> {a.SETTLEMENT_OVERDUE_SECONDS // 86400} * 86400",
        "SuanliSettlementDisputes": "> 0",
        "SuanliHoldsOverdue": "> 0",
    }
    for name, condition in expected.items():
        assert condition in rules[name], (name, rules[name], condition)


def test_notices_follow_the_figures() -> None:
    from node.domain.attention import Figures, notices

    day = 86_400_000
    now = 100 * day
    calm = Figures(now, [(2026, 1000, 500)], [("520100", 10, 100)], {}, 0, 0, None, None, [])
    assert notices(calm) == []
    busy = Figures(
        now,
        [(2026, 1000, 99)],
        [("520100", 81, 100), ("370200", 5, 0)],
        {"520100": (101, now - 301_000)},
        2,
        1,
        now - 31 * day,
        now - 46 * day,
        ["370200"],
    )
    codes = [(n.code, n.figures) for n in notices(busy)]
    assert codes == [
        ("budget_low", {"year": 2026, "remaining": 99, "budget": 1000}),
        ("exposure_near_cap", {"peer": "520100", "owed": 81, "cap": 100}),
        ("outbox_growing", {"peer": "520100", "count": 101}),
        ("outbox_stuck", {"peer": "520100", "seconds": 301}),
        ("disputes_open", {"count": 2}),
        ("holds_overdue", {"count": 1}),
        ("payouts_overdue", {"days": 31}),
        ("settlement_overdue", {"days": 46}),
        ("card_unacknowledged", {"peers": "370200"}),
    ]
    # Every notice has its words in both languages, its figures filled in.
    from node.web.i18n import notice_text

    for n in notices(busy):
        as_dict = {"code": n.code, "figures": n.figures}
        assert "{" not in notice_text(as_dict, "zh") and "{" not in notice_text(as_dict, "en")
