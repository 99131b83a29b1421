"""``suanli bench``: measure the federation where its users feel it, durability on.

Two real node processes (Hangzhou the issuer, Guiyang the acquirer) with ``synchronous=FULL``,
loaded over loopback by a separate load-generator process (``node.tools.bench.load``). Each case warms
up, then runs at least three times; the table gives the median and the spread of throughput and
latency, the load generator's own CPU seconds, and the invariant check after the case (every
node's ``suanli check`` and the pair's records compared): a case whose books do not balance is
void. Vouchers and one-time codes are bulk-loaded before the nodes start (``node.tools.bench.seed``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.app import build_node
from node.clock import SystemClock, year_of
from node.config import FederationConfig
from node.keys import NodeKey
from node.provision import peer_all
from node.services.common import SYSTEM
from node.tools.bench.seed import seed_codes, seed_vouchers
from node.tools.crosscheck import compare, in_flight
from node.tools.processes import free_port, serving, spawn

ROOT = Path(__file__).resolve().parents[3]
POLICIES = Path(__file__).resolve().parents[1] / "policies"
HZ, GY = "330100", "520100"
RUNS = 5  # per case; the table gives the median and the spread
DAY = 86_400_000


@dataclass
class Case:
    name: str
    kind: str  # redeem | holdcapture | issue
    at: str  # the node the load goes to
    clients: int
    requests: int
    runs: int
    target: str
    met: Any = None
    results: list[dict[str, Any]] = field(default_factory=list)
    checked: str = ""


class Federation:
    """Two node processes with their seeded books (``synchronous=FULL`` unless told)."""

    def __init__(
        self,
        root: Path,
        vouchers: int,
        codes: dict[str, int],
        synchronous: str = "FULL",
        storage: Callable[[str], dict[str, str] | None] | None = None,
    ) -> None:
        """``storage``: each node's engine settings by region (SQLite files by default)."""
        from node.provision import init_node

        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self.tokens: dict[str, str] = {}
        year = year_of(SystemClock().now_ms())
        for region, name in ((HZ, "hangzhou"), (GY, "guiyang")):
            text = (
                (POLICIES / f"{name}-2026.toml")
                .read_text()
                .replace("fiscal_year = 2026", f"fiscal_year = {year}")
            )
            text = text.replace("minimum_voucher_fen = 500_000", "minimum_voucher_fen = 0")
            fed = FederationConfig(port=free_port(), plaintext=True, call_timeout_seconds=5.0)
            self.ports[region] = free_port()
            self.tokens[region] = init_node(
                root / name,
                region,
                name,
                text,
                self.ports[region],
                synchronous,
                1.0,
                fed,
                storage=storage(region) if storage else None,
            )
        peer_all([(HZ, root / "hangzhou"), (GY, root / "guiyang")], 10**15)
        self.data = {HZ: root / "hangzhou", GY: root / "guiyang"}
        self._populate(vouchers, codes)

    def _populate(self, voucher_count: int, codes: dict[str, int]) -> None:
        import asyncio

        async def register() -> dict[str, Any]:
            out: dict[str, Any] = {"holders": [], "tokens": []}
            hz = build_node(self.data[HZ])
            gy = build_node(self.data[GY])
            try:
                from node.domain.uscc import check_character

                holders = max(1, min(10_000, voucher_count // 100))
                for i in range(max(holders, 64)):
                    body = f"9133010{i:06d}BEN"[:17]
                    body = body[:8] + f"{i:09d}"
                    uscc = body + check_character(body)
                    h, token = await hz.registry.register_holder(
                        SYSTEM, uscc, f"holder {i}", "enterprise", HZ, None
                    )
                    out["holders"].append((h.id, uscc))
                    out["tokens"].append(token)
                p, out["gy_provider_token"] = await gy.registry.register_provider(
                    SYSTEM,
                    "91520100MA6DGY001" + check_character("91520100MA6DGY001"),
                    "GY centre",
                    "computing_centre",
                    None,
                    (),
                    True,
                )
                out["gy_provider"] = p.id
                p, out["hz_provider_token"] = await hz.registry.register_provider(
                    SYSTEM,
                    "91330100MA2B3C4D5" + check_character("91330100MA2B3C4D5"),
                    "HZ centre",
                    "computing_centre",
                    None,
                    (),
                    True,
                )
                out["hz_provider"] = p.id
                return out
            finally:
                hz.close()
                gy.close()

        reg = asyncio.run(register())
        self.holder_tokens: list[str] = reg["tokens"]
        self.provider_tokens = {GY: reg["gy_provider_token"], HZ: reg["hz_provider_token"]}
        now = SystemClock().now_ms()
        key = NodeKey.load(self.data[HZ] / "node.key")
        holders = reg["holders"]
        per_holder = max(1, voucher_count // len(holders))
        # Within Hangzhou's ¥250,000,000 budget whatever the count: ¥10,000 each, or less.
        face = min(1_000_000, 20_000_000_000 // (per_holder * len(holders)))
        ids = seed_vouchers(self.data[HZ], key, HZ, holders, per_holder, face, year_of(now), now)
        pairs = [(vid, holders[i // per_holder][0]) for i, vid in enumerate(ids)]
        self.codes: dict[str, list[str]] = {}
        for region, count in codes.items():
            provider = reg["gy_provider"] if region == GY else reg["hz_provider"]
            self.codes[region] = seed_codes(
                self.data[HZ],
                pairs,
                region,
                provider,
                count,
                1_000_000,
                now,
                now + 30 * DAY,
                HZ,
            )

    def start(self) -> None:
        for region, data in self.data.items():
            self.procs[region] = spawn(data, tied=True)
        deadline = time.monotonic() + 120
        for region, data in self.data.items():
            while serving(data, self.procs[region]) is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{region} did not start; see {data / 'node.log'}")
                time.sleep(0.05)

    def url(self, region: str) -> str:
        return f"http://127.0.0.1:{self.ports[region]}"

    def rss_mb(self, region: str) -> float:
        status = Path(f"/proc/{self.procs[region].pid}/status").read_text()
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        return kb / 1024

    def check(self) -> str:
        deadline = time.monotonic() + 60
        while any(in_flight(d) for d in self.data.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        problems = []
        for region, data in self.data.items():
            out = subprocess.run(
                [sys.executable, "-m", "node.cli", "check", "--data", str(data)],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            if out.returncode != 0:
                problems.append(f"{region}: {out.stdout.strip()[:500]}")
        problems += compare(HZ, self.data[HZ], GY, self.data[GY])
        return "ok" if not problems else "VOID: " + "; ".join(problems)[:300]

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _load(
    fed: Federation, case: Case, items: list[dict[str, Any]], token: str, root: Path
) -> dict[str, Any]:
    spec = {
        "base": fed.url(case.at),
        "clients": case.clients,
        "kind": case.kind,
        "token": token,
        "work": items,
    }
    path = root / "spec.json"
    path.write_text(json.dumps(spec))
    out = subprocess.run(
        [sys.executable, "-m", "node.tools.bench.load", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _work(
    case: Case, codes: list[str], holder_tokens: list[str], prefix: str
) -> list[dict[str, Any]]:
    items = []
    for i in range(case.requests):
        if case.kind == "issue":
            body = {
                "compute_class": "model_services",
                "estimated_amount_fen": 1_000_000,
                "period_start": "2026-01-01",
                "period_end": "2026-12-31",
            }
            items.append({"body": body, "token": holder_tokens[i % len(holder_tokens)]})
            continue
        order = {
            "code": codes.pop(),
            "order_id": f"{prefix}-{i}",
            "order_amount_fen": 1000,
            "compute_class": "model_services",
        }
        item: dict[str, Any] = (
            {"order": order, "capture": 250} if case.kind == "holdcapture" else {"body": order}
        )
        items.append(item)
    return items


def run_cases(plan: list[tuple[Federation, Case]], root: Path, warmup: int) -> None:
    """Warm every case up, then run them in rounds (the first run of each case, then the
    second, …): on a shared machine a slow spell then costs one run of several cases, not
    every run of one, and the medians say what the code does. The books are checked after
    every run; one failed check voids the case."""

    def load(fed: Federation, case: Case, requests: int, tag: str) -> dict[str, Any]:
        region_codes = fed.codes.get(GY if case.at == GY else HZ, [])
        sized = Case(case.name, case.kind, case.at, case.clients, requests, 1, "")
        items = _work(sized, region_codes, fed.holder_tokens, tag)
        return _load(fed, sized, items, fed.provider_tokens.get(case.at, ""), root)

    if warmup:
        for number, (fed, case) in enumerate(plan):
            load(fed, case, warmup, f"warm-c{number}-{case.clients}")
    for run in range(max(case.runs for _, case in plan)):
        for number, (fed, case) in enumerate(plan):
            if run >= case.runs:
                continue
            result = load(fed, case, case.requests, f"c{number}-{case.clients}-{run}")
            case.results.append(result)
            checked = fed.check()
            if case.checked in ("", "ok"):
                case.checked = checked
            print(
                f"  {case.name} ({case.clients} clients) run {run + 1}: {result['rate']:.0f}/s "
                f"p50 {result['p50_ms']:.1f} ms p99 {result['p99_ms']:.1f} ms "
                f"errors {result['errors']} books {checked}",
                flush=True,
            )


def _median(case: Case, key: str) -> float:
    return float(statistics.median(r[key] for r in case.results))


def _spread(case: Case, key: str) -> str:
    values = [r[key] for r in case.results]
    return (
        f"{min(values):.0f}–{max(values):.0f}"
        if key == "rate"
        else f"{min(values):.1f}–{max(values):.1f}"
    )


def table(cases: list[Case]) -> str:
    lines = [
        "| case | clients | runs × requests | throughput/s median (min–max) | p50 ms median (min–max) | p99 ms median (min–max) | load-gen CPU s | errors | books | target | met |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        errors = sum(sum(r["errors"].values()) for r in c.results)
        met = (c.met(c) and c.checked == "ok") if c.met else None
        lines.append(
            f"| {c.name} | {c.clients} | {len(c.results)} × {c.requests} | {_median(c, 'rate'):.0f} ({_spread(c, 'rate')}) | "
            f"{_median(c, 'p50_ms'):.1f} ({_spread(c, 'p50_ms')}) | {_median(c, 'p99_ms'):.1f} ({_spread(c, 'p99_ms')}) | "
            f"{_median(c, 'cpu_seconds'):.1f} | {errors} | {c.checked} | {c.target} | {'yes' if met else 'no' if met is not None else ''} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (
            ln.split()[1]
            for ln in Path("/proc/meminfo").read_text().splitlines()
            if ln.startswith("MemTotal")
        ),
        "0",
    )
    return f"{os.cpu_count()} cores ({cpu}), {int(mem) // 1024 // 1024} GiB, Python {platform.python_version()}, {platform.platform()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="suanli bench")
    parser.add_argument(
        "--quick", action="store_true", help="a few seconds: one small case (make test runs it)"
    )
    parser.add_argument("--out", help="write the results (markdown) here")
    parser.add_argument(
        "--growth", type=int, default=1_000_000, help="vouchers in the large growth case"
    )
    parser.add_argument("--skip-growth", action="store_true")
    args = parser.parse_args(argv)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="suanli-bench-") as tmp:
        root = Path(tmp)
        if args.quick:
            cases = [Case("1 cross-region redeem", "redeem", GY, 8, 100, 1, "runs, books balance")]
            fed = Federation(root / "quick", 640, {GY: 200})
            fed.start()
            try:
                run_cases([(fed, case) for case in cases], root, warmup=0)
            finally:
                fed.stop()
            print(table(cases))
            return 0 if cases[0].checked == "ok" and cases[0].results[0]["count"] == 100 else 1
        cases = [
            Case(
                "1 cross-region redeem",
                "redeem",
                GY,
                64,
                3000,
                RUNS,
                "≥ 1,000/s, p99 ≤ 100 ms",
                lambda c: _median(c, "rate") >= 1000 and _median(c, "p99_ms") <= 100,
            ),
            Case(
                "1 cross-region redeem",
                "redeem",
                GY,
                1,
                300,
                RUNS,
                "p50 ≤ 3 ms",
                lambda c: _median(c, "p50_ms") <= 3,
            ),
            Case(
                "2 cross-region hold + capture",
                "holdcapture",
                GY,
                64,
                1500,
                RUNS,
                "≥ 500/s",
                lambda c: _median(c, "rate") >= 500,
            ),
            Case(
                "3 local redeem",
                "redeem",
                HZ,
                64,
                3000,
                RUNS,
                "≥ 2,000/s",
                lambda c: _median(c, "rate") >= 2000,
            ),
            Case(
                "4 issuance",
                "issue",
                HZ,
                64,
                3000,
                RUNS,
                "≥ 2,000/s",
                lambda c: _median(c, "rate") >= 2000,
            ),
        ]
        fed = Federation(root / "main", 6_400, {GY: 40_000, HZ: 20_000})
        fed.start()
        try:
            run_cases([(fed, case) for case in cases], root, warmup=300)
        finally:
            fed.stop()
        growth: list[Case] = []
        rss = {}
        if not args.skip_growth:
            # Both federations serve at once and their runs alternate, so the ratio compares
            # runs made side by side (the idle pair costs nothing).
            feds = []
            for size in (10_000, args.growth):
                print(f"growth: seeding {size:,} vouchers", flush=True)
                feds.append(Federation(root / f"growth-{size}", size, {GY: 16_000}))
                growth.append(
                    Case(f"5 growth: case 1 at {size:,} vouchers", "redeem", GY, 64, 3000, RUNS, "")
                )
            try:
                for big in feds:
                    big.start()
                run_cases(list(zip(feds, growth, strict=True)), root, warmup=300)
                rss[args.growth] = feds[1].rss_mb(HZ)
            finally:
                for big in feds:
                    big.stop()
            small, large = growth
            ratio = _median(large, "rate") / _median(small, "rate")
            large.target = (
                f"within 20% of 10k ({ratio:.0%}); issuer RSS {rss[args.growth]:.0f} MB ≤ 300 MB"
            )
            large.met = lambda c, r=ratio, m=rss[args.growth]: r >= 0.8 and m <= 300
        all_cases = cases + growth
        text = table(all_cases)
        print(text)
        if args.out:
            Path(args.out).write_text(
                f"<!-- written by `suanli bench --out {args.out}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, "
                f"{(time.time() - started) / 60:.0f} min -->\n\n"
                f"Machine: {machine()}.\n\n{text}\n"
            )
    return 0
