"""``suanli demo``: a Hangzhou node as a real process, driven through its REST API.

It creates a data folder, starts ``suanli serve`` as a child process, registers realistic
holders and providers, submits demands (granted and declined), spends vouchers (hold and
capture, one-step redeem, void, a refused double subsidy), checks the books, prints a summary
and how to reach the node, then serves until Ctrl-C. ``--once`` exits after the check, 0 only
if every invariant holds. The three-city federation arrives with the federation issue.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from node.clock import SystemClock, year_of
from node.domain.money import yuan

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "ops" / "policies" / "hangzhou-2026.toml"

HOLDERS = [
    ("acme", "91330100716105852F", "杭州云智科技有限公司", "enterprise", None),
    ("zju", "12100000400000624D", "浙江大学", "university", "330100"),
    ("lab", "1210000042500615X0", "之江实验室", "research_institute", "330100"),
    ("shenzhen", "914403001922038216", "深圳某科技有限公司", "enterprise", None),
]
PROVIDERS = [
    ("hzaicc", "91330100MA2B3C4D5N", "杭州人工智能计算中心", "computing_centre", True),
    ("match", "91330100MA2H7J8K9R", "杭州算力撮合平台", "matchmaking_partner", True),
    ("pending", "91330106MA27XYW01W", "待审批算力中心", "computing_centre", False),
]


def die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when the demo process dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session, self.base, self.token = session, base, token

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.session.request(
            method, self.base + path, json=body, headers=headers
        ) as resp:
            return resp.status, await resp.json()

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = await self.call(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {data}")
        return data


def _prepare(data: Path, port: int) -> str:
    """Initialise the demo node with this year's copy of the Hangzhou policy."""
    from node.cli import init_node

    year = year_of(SystemClock().now_ms())
    text = re.sub(r"^fiscal_year = \d+", f"fiscal_year = {year}", POLICY.read_text(), flags=re.M)
    return init_node(data, "330100", "杭州 Hangzhou", text, port, "FULL", 2.0)


async def _wait_ready(data: Path, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    state = data / "serve.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the node exited with {proc.returncode}; see {data / 'node.log'}")
        if state.exists():
            port: int = json.loads(state.read_text())["http_port"]
            return port
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the node did not start within {timeout}s; see {data / 'node.log'}")


async def scenario(base: str, operator_token: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        op = Client(session, base, operator_token)
        holders: dict[str, Client] = {}
        ids: dict[str, str] = {}
        for key, code, name, category, region in HOLDERS:
            body = {"uscc": code, "name": name, "category": category}
            if region:
                body["region"] = region
            data = await op.ok("POST", "/v1/holders", body)
            holders[key], ids[key] = Client(session, base, data["token"]), data["holder"]["id"]
        providers: dict[str, Client] = {}
        for key, code, name, kind, approved in PROVIDERS:
            data = await op.ok(
                "POST",
                "/v1/providers",
                {"uscc": code, "name": name, "kind": kind, "approved": approved},
            )
            providers[key], ids[key] = Client(session, base, data["token"]), data["provider"]["id"]

        def demand(cls: str, fen: int) -> dict[str, Any]:
            return {
                "compute_class": cls,
                "estimated_amount_fen": fen,
                "period_start": "Q1",
                "period_end": "Q4",
            }

        decisions = []
        for key, cls, fen in [
            ("acme", "model_services", 1_200_000_000),  # ¥12,000,000 of model services → 30%
            ("zju", "domestic_chips", 40_000_000),  # ¥400,000: small-contract rule, 50%
            ("lab", "other_compute", 300_000_000),  # ¥3,000,000 → 20%
            ("shenzhen", "model_services", 100_000_000),  # registered in Shenzhen: declined
            ("acme", "storage", 10_000_000),  # storage is not intelligent compute: declined
        ]:
            decisions.append((key, await holders[key].ok("POST", "/v1/demands", demand(cls, fen))))
        vouchers = {key: d["voucher"] for key, d in decisions if d["voucher"]}
        expires = "2099-01-01T00:00:00Z"

        async def authorize(holder: str, provider: str, max_fen: int) -> str:
            v = vouchers[holder]
            exp = min(expires, v["expires_at"])
            data = await holders[holder].ok(
                "POST",
                f"/v1/vouchers/{v['id']}/authorizations",
                {"provider_id": ids[provider], "max_fen": max_fen, "expires_at": exp},
            )
            return str(data["code"])

        def order(c: str, oid: str, fen: int, cls: str) -> dict[str, Any]:
            return {"code": c, "order_id": oid, "order_amount_fen": fen, "compute_class": cls}

        flows = []
        hold = await providers["hzaicc"].ok(
            "POST",
            "/v1/holds",
            order(
                await authorize("acme", "hzaicc", 100_000_000),
                "HZAICC-2026-0001",
                250_000_000,
                "model_services",
            ),
        )
        flows.append(("hold", hold["hold"]))
        cap = await providers["hzaicc"].ok(
            "POST", f"/v1/holds/{hold['hold']['id']}/capture", {"amount_fen": 60_000_000}
        )
        flows.append(("capture", cap["hold"]))
        red = await providers["match"].ok(
            "POST",
            "/v1/redemptions",
            order(
                await authorize("zju", "match", 20_000_000),
                "MATCH-88001",
                30_000_000,
                "domestic_chips",
            ),
        )
        flows.append(("redeem", red["hold"]))
        vh = await providers["hzaicc"].ok(
            "POST",
            "/v1/holds",
            order(
                await authorize("lab", "hzaicc", 5_000_000),
                "HZAICC-2026-0002",
                10_000_000,
                "other_compute",
            ),
        )
        flows.append(
            (
                "void",
                (await providers["hzaicc"].ok("POST", f"/v1/holds/{vh['hold']['id']}/void"))[
                    "hold"
                ],
            )
        )
        twice_status, twice = await providers["match"].call(
            "POST",
            "/v1/redemptions",
            order(
                await authorize("zju", "match", 1_000_000),
                "MATCH-88001",
                30_000_000,
                "domestic_chips",
            ),
        )
        budget = (await op.ok("GET", "/v1/budget"))["items"]
        return {
            "decisions": decisions,
            "flows": flows,
            "double_subsidy": (twice_status, twice["error"]["code"]),
            "budget": budget,
            "tokens": {
                "operator": operator_token,
                "acme (holder)": holders["acme"].token,
                "hzaicc (provider)": providers["hzaicc"].token,
            },
        }


def _summary(base: str, data: Path, result: dict[str, Any]) -> str:
    lines = [
        f"\nSuanli demo: Hangzhou (330100) at {base}   data: {data}",
        "",
        "Issuance decisions (免申即享):",
    ]
    for key, d in result["decisions"]:
        dec = d["decision"]
        what = yuan(dec["amount_fen"]) if dec["outcome"] == "issued" else dec["reasons"][-1]["code"]
        lines.append(f"  {key:<9} {dec['compute_class']:<15} {dec['outcome']:<9} {what}")
    lines.append("Spending:")
    for kind, h in result["flows"]:
        lines.append(
            f"  {kind:<8} order {h['order_id']:<17} hold {yuan(h['amount_fen']):>14}  captured {yuan(h['captured_fen']):>14}  {h['state']}"
        )
    status, code = result["double_subsidy"]
    lines.append(f"  the same order again with a new code: refused {status} {code}")
    for b in result["budget"]:
        lines.append(
            f"Budget {b['fiscal_year']}: {yuan(b['budget_fen'])}, committed {yuan(b['committed_fen'])}, remaining {yuan(b['remaining_fen'])}"
        )
    lines += ["", "Reach it:"]
    for who, token in result["tokens"].items():
        lines.append(f"  {who:<18} {token}")
    op = result["tokens"]["operator"]
    lines += [
        f"  curl {base}/health",
        f"  curl {base}/metrics | grep suanli_",
        f"  curl -H 'Authorization: Bearer {op}' {base}/v1/budget",
        f"  curl {base}/openapi.json",
    ]
    return "\n".join(lines)


async def run_demo(args: argparse.Namespace) -> int:
    data = (
        Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="suanli-demo-")) / "hangzhou"
    )
    token = _prepare(data, args.port)
    log = open(data / "node.log", "ab")  # noqa: SIM115 - the child writes to it for its life
    proc = subprocess.Popen(
        [sys.executable, "-m", "node.cli", "serve", "--data", str(data)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=die_with_parent,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        port = await _wait_ready(data, proc)
        base = f"http://127.0.0.1:{port}"
        result = await scenario(base, token)
        print(_summary(base, data, result))
        check = subprocess.run(
            [sys.executable, "-m", "node.cli", "check", "--data", str(data)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        print(check.stdout.strip() or check.stderr.strip())
        if args.once:
            return check.returncode
        print("\nServing until Ctrl-C. Logs:", data / "node.log", flush=True)
        while proc.poll() is None and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
        print("stopping")
        return 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
