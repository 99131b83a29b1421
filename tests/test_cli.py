"""The CLI and real node processes: init, serve, check, tokens, policy, kill -9, demo."""

from __future__ import annotations

import json
import re
import sqlite3
import stat
from pathlib import Path
from typing import Any

from node import VERSION
from node.clock import SystemClock, year_of
from node.store.schema import SCHEMA_VERSION
from tests.cluster import http, one_city
from tests.conftest import PROVIDER_A, policy_text
from tests.exposition import parse
from tests.proc import NodeProcess, suanli, wait_until

# Real processes run on the wall clock: their policy is for the current fiscal year.
YEAR = year_of(SystemClock().now_ms())


def this_year(**replace: str) -> str:
    return policy_text(fiscal_year=str(YEAR), **replace)


def init(tmp_path: Path, text: str | None = None, process: bool = False) -> tuple[Path, str]:
    data = tmp_path / "hz"
    policy = tmp_path / "policy.toml"
    policy.write_text(text or this_year())
    out = suanli(
        "init",
        "--data",
        str(data),
        "--region",
        "330100",
        "--name",
        "Hangzhou",
        "--policy",
        str(policy),
        process=process,
    )
    token = out.stdout.split("stored hashed): ")[1].strip()
    return data, token


def test_init_secures_its_files(tmp_path: Path) -> None:
    data, token = init(tmp_path, process=True)  # the command as a process, its own umask
    assert token.startswith("slo_")
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "node.key").stat().st_mode) == 0o600
    with sqlite3.connect(data / "suanli.db") as conn:
        hashes = [r[0] for r in conn.execute("SELECT token_sha256 FROM tokens")]
        assert token not in hashes and len(hashes) == 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
    again = suanli(
        "init",
        "--data",
        str(data),
        "--region",
        "330100",
        "--name",
        "x",
        "--policy",
        str(tmp_path / "policy.toml"),
        check=False,
    )
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr
    (data / "node.key").chmod(0o644)
    loose = suanli("check", "--data", str(data), check=False)
    assert loose.returncode == 2 and "chmod 600" in loose.stderr


def test_init_with_a_bad_policy_creates_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(policy_text(annual_budget_fen="-1"))
    out = suanli(
        "init",
        "--data",
        str(tmp_path / "n"),
        "--region",
        "330100",
        "--name",
        "x",
        "--policy",
        str(bad),
        check=False,
    )
    assert out.returncode == 2 and "policy.annual_budget_fen" in out.stderr
    assert not (tmp_path / "n").exists()


def test_serve_tokens_policy_check_and_kill9(tmp_path: Path) -> None:
    data, op = init(tmp_path)
    node = NodeProcess(data).start()
    try:
        status, health = http("GET", f"{node.url}/health")
        assert status == 200 and health["version"] == VERSION
        assert health["schema_version"] == SCHEMA_VERSION and health["region"] == "330100"
        status, metrics = http("GET", f"{node.url}/metrics")
        assert status == 200
        samples = parse(metrics, "330100")
        assert samples[("suanli_budget_total_fen", (("year", str(YEAR)),))] == 25_000_000_000
        build = (("schema", str(SCHEMA_VERSION)), ("version", VERSION))
        assert samples[("suanli_build_info", build)] == 1
        assert samples[("process_resident_memory_bytes", ())] > 0
        # The same version from the command line, installed or not.
        shown = suanli("--version", process=True).stdout
        assert shown.strip() == f"suanli {VERSION} (database schema {SCHEMA_VERSION})"
        # A token made from the CLI works against the running node; revoked, it stops.
        made = suanli(
            "token", "create", "--data", str(data), "--role", "operator", "--label", "cli"
        ).stdout
        token_id, token = made.split()[1], made.rsplit(" ", 1)[1].strip()
        assert http("GET", f"{node.url}/v1/budget", token)[0] == 200
        suanli("token", "revoke", "--data", str(data), token_id)
        wait_until(
            lambda: http("GET", f"{node.url}/v1/budget", token)[0] == 401,
            "the revocation (cached ≤ 1 s)",
        )
        # A policy loaded from the CLI reaches the running node within a sweep interval.
        bigger = tmp_path / "bigger.toml"
        bigger.write_text(this_year(annual_budget_fen="30_000_000_000"))
        suanli("policy", "load", "--data", str(data), str(bigger))
        wait_until(
            lambda: (
                http("GET", f"{node.url}/v1/policy", op)[1]["annual_budget_fen"] == 30_000_000_000
            ),
            "the new policy",
            timeout=15,
        )
        # Money moves, the answer comes back, then the process dies without warning.
        city = one_city(node.url, op)
        status, r = http(
            "POST",
            f"{node.url}/v1/redemptions",
            city.provider,
            {
                "code": city.code,
                "order_id": "K9-1",
                "order_amount_fen": 1_000_000,
                "compute_class": "model_services",
            },
        )
        assert status == 201
        node.kill()
        node.start()
        status, after = http("GET", f"{node.url}/v1/holds/{r['hold']['id']}", op)
        assert status == 200 and after["state"] == "captured" and after["captured_fen"] == 300_000
        assert "every invariant holds" in suanli("check", "--data", str(data)).stdout
        # An online backup while serving: consistent, and a node restored from it checks clean.
        suanli("backup", "--data", str(data), str(tmp_path / "backup.db"))
        assert stat.S_IMODE((tmp_path / "backup.db").stat().st_mode) == 0o600
        restored = tmp_path / "restored"
        restored.mkdir(mode=0o700)
        for name in ("node.toml", "node.key"):
            (restored / name).write_bytes((data / name).read_bytes())
        (restored / "node.key").chmod(0o600)
        (restored / "suanli.db").write_bytes((tmp_path / "backup.db").read_bytes())
        assert "every invariant holds" in suanli("check", "--data", str(restored)).stdout
        # Reports read beside the running node.
        captures = suanli("export", "--data", str(data), "captures").stdout.splitlines()
        assert captures[0].startswith("kind,issuer_region,acquirer_region,hold_id,")
        assert len(captures) == 2 and captures[1].startswith("local,330100,330100,")
        assert ",K9-1,1000000,model_services,300000," in captures[1]
        assert re.search(r",20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z$", captures[1])
        payables = [
            json.loads(line)
            for line in suanli(
                "export", "--data", str(data), "payables", "--format", "json"
            ).stdout.splitlines()
        ]
        assert payables == [
            {
                "provider_id": city.provider_id,
                "provider_uscc": PROVIDER_A,
                "provider_name": "Centre",
                "payable_fen": 300_000,
            }
        ]
        assert node.stop() == 0
        assert not (data / "serve.json").exists()
    finally:
        node.stop()


def test_check_finds_tampering(tmp_path: Path) -> None:
    data, _ = init(tmp_path)
    with sqlite3.connect(data / "suanli.db") as conn:
        conn.execute(
            "UPDATE accounts SET balance_fen = balance_fen + 1 WHERE name = ?",
            (f"budget:{YEAR}:pool",),
        )
    out = suanli("check", "--data", str(data), check=False)
    assert out.returncode == 1
    assert f"account budget:{YEAR}:pool: cached 25000000001 ≠ transfers 25000000000" in out.stdout


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    data, _ = init(tmp_path)
    with sqlite3.connect(data / "suanli.db") as conn:
        conn.execute("PRAGMA user_version = 999")
    out = suanli("check", "--data", str(data), check=False)
    assert out.returncode == 2 and "newer than this node" in out.stderr


def test_policy_show(tmp_path: Path) -> None:
    data, _ = init(tmp_path)
    shown = json.loads(suanli("policy", "show", "--data", str(data), "--year", str(YEAR)).stdout)
    assert (
        shown["annual_budget_fen"] == 25_000_000_000
        and shown["compute_classes"]["model_services"] == 3000
    )


def test_demo_once(tmp_path: Path) -> None:
    """The three-city demo runs its scenario and every check passes (exit 0 only then)."""
    out = suanli("demo", "--once", "--port", "0", "--data", str(tmp_path / "demo"))
    assert "Every node's books balance and every pair of cities agrees." in out.stdout
    assert "order_already_subsidised" in out.stdout and "out_of_scope" in out.stdout
    # The headline redemption (¥900,000) and the order from Guiyang's catalog offer (30 % of
    # 400 card-hours at ¥25.00: ¥3,000).
    assert "Hangzhou  → Guiyang   ¥903,000.00" in out.stdout
    assert (
        "Hangzhou  owes Guiyang      ¥903,000.00  (2 capture(s), " in out.stdout
        and "countersigned)" in out.stdout
    )
    assert "Hangzhou  pays Guiyang      ¥603,000.00" in out.stdout
    assert "A800         list ¥25.00  after its voucher ¥17.50" in out.stdout
    assert "accepted as GA-2026-0100; redeemed: captured, subsidy ¥3,000.00" in out.stdout
    # Qingdao, party to none of Hangzhou's and Guiyang's statements, sees what they captured.
    assert "cards on offer: Qingdao 256, Guiyang 1,536" in out.stdout
    assert "Hangzhou  → Guiyang   captured ¥903,000.00" in out.stdout


def test_card_export_and_peer_add_with_fingerprint(tmp_path: Path) -> None:
    """Two operators exchange cards; a wrong fingerprint imports nothing."""
    from tests.cluster import free_port

    nodes = {}
    for region, policy in (("330100", "hangzhou"), ("520100", "guiyang")):
        text = tmp_path / f"{region}.toml"
        text.write_text(policy_text(policy, fiscal_year=str(YEAR)))
        data = tmp_path / region
        suanli(
            "init",
            "--data",
            str(data),
            "--region",
            region,
            "--name",
            policy,
            "--policy",
            str(text),
            "--grpc-port",
            str(free_port()),
            "--plaintext",
        )
        nodes[region] = data
    no_tls = suanli(
        "init",
        "--data",
        str(tmp_path / "x"),
        "--region",
        "370200",
        "--name",
        "x",
        "--policy",
        str(tmp_path / "330100.toml"),
        "--grpc-port",
        "1",
        check=False,
    )
    assert no_tls.returncode == 2 and "--plaintext" in no_tls.stderr
    card = tmp_path / "gy.card"
    exported = suanli("card", "export", "--data", str(nodes["520100"]), "--out", str(card))
    own_print = suanli("card", "fingerprint", "--data", str(nodes["520100"])).stdout
    shown = suanli(
        "peer",
        "add",
        "--data",
        str(nodes["330100"]),
        str(card),
        "--fingerprint",
        "0000 0000",
        check=False,
    )
    assert shown.returncode == 1 and "does not match" in shown.stderr
    fingerprint = shown.stdout.split("fingerprint: ")[1].splitlines()[0]
    assert len(fingerprint.split()) == 8
    # What Guiyang's operator reads out is what Hangzhou's import shows.
    assert f"fingerprint: {fingerprint} (read it" in exported.stderr
    assert own_print.strip().endswith(f"fingerprint: {fingerprint}")
    unconfirmed = suanli("peer", "add", "--data", str(nodes["330100"]), str(card), check=False)
    assert unconfirmed.returncode == 1 and "not imported" in unconfirmed.stderr
    assert suanli("peer", "list", "--data", str(nodes["330100"])).stdout == ""
    suanli(
        "peer",
        "add",
        "--data",
        str(nodes["330100"]),
        str(card),
        "--fingerprint",
        fingerprint,
        "--exposure-cap-fen",
        "500000",
    )
    peers = [
        json.loads(line)
        for line in suanli("peer", "list", "--data", str(nodes["330100"])).stdout.splitlines()
    ]
    assert [
        (p["region"], p["fingerprint"], p["exposure_cap_fen"], p["outbound"]) for p in peers
    ] == [("520100", fingerprint, 500000, True)]
    own = suanli("peer", "add", "--data", str(nodes["520100"]), str(card), "--yes", check=False)
    assert own.returncode == 2 and "own card" in own.stderr
    garbage = tmp_path / "garbage.card"
    garbage.write_text("bm90IGEgY2FyZA==\n")
    bad = suanli("peer", "add", "--data", str(nodes["330100"]), str(garbage), "--yes", check=False)
    assert bad.returncode == 2 and "not a node card" in bad.stderr


def test_federation_enable_checks_tls_files(tmp_path: Path, monkeypatch: Any) -> None:
    """An existing node joins the federation by command, not by editing node.toml; its TLS
    files are checked then, each error naming the option, and relative paths are stored
    absolute (they used to be stored verbatim and resolved against the data folder at serve)."""
    import socket

    from tests.cluster import free_port, make_tls

    data, _ = init(tmp_path)
    cert, key, ca = make_tls(tmp_path / "tls", "hz")
    config = (data / "node.toml").read_text()
    monkeypatch.chdir(tmp_path / "tls")
    grpc = str(free_port())

    def enable(*extra: str) -> Any:
        return suanli(
            "federation", "enable", "--data", str(data), "--grpc-port", grpc, *extra, check=False
        )

    relative = ("--tls-cert", cert.name, "--tls-key", key.name, "--tls-ca", ca.name)
    refusals = [
        (("--tls-cert", "nowhere.pem", *relative[2:]), "federation.tls_cert: ", "does not exist"),
        (
            (*relative[:2], "--tls-key", cert.name, *relative[4:]),
            "federation.tls_key: ",
            "not a PEM private key",
        ),
        ((*relative[:4], "--tls-ca", key.name), "federation.tls_ca: ", "not a PEM CA certificate"),
        (("--tls-cert", cert.name), "--tls-key", ""),
    ]
    for args, named, says in refusals:
        out = enable(*args)
        assert out.returncode == 2 and named in out.stderr and says in out.stderr, out.stderr
    key.chmod(0o640)
    out = enable(*relative)
    assert out.returncode == 2 and "chmod 600" in out.stderr
    assert (data / "node.toml").read_text() == config  # nothing written by a refusal
    key.chmod(0o600)

    out = enable(*relative, "--mutual-tls")
    assert out.returncode == 0, out.stderr
    written = (data / "node.toml").read_text()
    assert f'tls_cert = "{cert}"' in written and f'tls_key = "{key}"' in written
    assert stat.S_IMODE((data / "node.toml").stat().st_mode) == 0o600
    again = enable("--plaintext")
    assert again.returncode == 2 and "--replace" in again.stderr
    # The node serves the federation over TLS from another folder than the one enable ran in.
    monkeypatch.chdir(tmp_path)
    node = NodeProcess(data).start()
    try:
        with socket.create_connection(("127.0.0.1", int(grpc)), timeout=5):
            pass
        assert "fingerprint: " in suanli("card", "fingerprint", "--data", str(data)).stdout
        healthy = suanli("health", "--data", str(data))  # REST /health, the gRPC port (TLS)
        assert healthy.stdout.startswith("healthy: 330100") and f"gRPC {grpc}" in healthy.stdout
    finally:
        node.stop()
    stopped = suanli("health", "--data", str(data), check=False)
    assert stopped.returncode == 1 and stopped.stdout.startswith("unhealthy: ")
    changed = enable("--plaintext", "--replace")
    assert changed.returncode == 0 and "plaintext" in changed.stdout
    assert "plaintext = true" in (data / "node.toml").read_text()


def test_every_operator_action_names_the_operator(tmp_path: Path, monkeypatch: Any) -> None:
    """The audit trail and the windows name who acted: at the command line the --operator
    given, else $SUANLI_OPERATOR, else the OS user; through the API the token's id and label.
    (The CLI used to act as system:system.)"""
    import getpass

    text = tmp_path / "p.toml"
    text.write_text(this_year())
    data = tmp_path / "hz"
    out = suanli(
        "init",
        "--data",
        str(data),
        "--region",
        "330100",
        "--name",
        "hz",
        "--policy",
        str(text),
        "--operator",
        "Li Wei",
    )
    op = out.stdout.rsplit(" ", 1)[1].strip()
    monkeypatch.delenv("SUANLI_OPERATOR", raising=False)
    made = suanli("token", "create", "--data", str(data), "--role", "operator", "--label", "desk A")
    desk_id, desk = made.stdout.split()[1], made.stdout.rsplit(" ", 1)[1].strip()
    monkeypatch.setenv("SUANLI_OPERATOR", "night shift")
    suanli("settle", "close", "--data", str(data), f"{YEAR}-Q1")
    bad = suanli("settle", "windows", "--data", str(data), "--operator", "x(y)", check=False)
    assert bad.returncode == 2 and "parentheses" in bad.stderr
    node = NodeProcess(data).start()
    try:
        closed = http(
            "POST", f"{node.url}/v1/settlement/windows/close", desk, {"window": f"{YEAR}-Q2"}
        )
        assert closed[0] == 201, closed
        status, journal = http("GET", f"{node.url}/v1/journal?kind=audit&limit=500", op)
        assert status == 200
    finally:
        node.stop()
    actors = {(e["action"], e["actor"]) for e in journal["items"]}
    first_token = next(e for e in journal["items"] if e["action"] == "token.create")["subject"]
    assert ("policy.load", "operator:cli (Li Wei)") in actors, actors
    assert ("token.create", "operator:cli (Li Wei)") in actors
    assert ("token.create", f"operator:cli ({getpass.getuser()})") in actors
    closes = [e["actor"] for e in journal["items"] if e["action"] == "window.close"]
    assert closes == ["operator:cli (night shift)", f"operator:{desk_id} (desk A)"], closes
    automatic = {(action, a) for action, a in actors if a.startswith("system:")}
    # Only the node's own steps are the system's (signing payouts after a close).
    assert first_token and automatic == {("window.payouts", "system:settlement")}, automatic
    with sqlite3.connect(data / "suanli.db") as conn:
        closed_by = [r[0] for r in conn.execute("SELECT closed_by FROM windows ORDER BY closed_at")]
    assert closed_by == closes
