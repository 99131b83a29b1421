"""``suanli demo``: a three-city federation on loopback, driven through the REST APIs.

Hangzhou (330100), Qingdao (370200) and Guiyang (520100) each run as their own process
(``suanli serve``) with their own SQLite file, key and policy, peered with each other over
plaintext gRPC on 127.0.0.1. The scenario registers realistic holders and providers, decides
demands (granted and declined), redeems locally in every city and across cities (a Hangzhou
start-up training on a Guiyang cluster; a Qingdao enterprise on a Hangzhou centre, in two
phases), refuses a double subsidy, shares compute (offers published in Guiyang and Qingdao,
found and ordered from Hangzhou at the price after its voucher, the order redeemed), then checks every node's books and that every pair of
cities agrees. It prints a summary and serves until Ctrl-C; ``--once`` exits after the checks,
0 only if all of them pass.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from node.clock import SystemClock, year_of
from node.config import FederationConfig
from node.domain.money import yuan
from node.provision import peer_all
from node.tools.crosscheck import compare, in_flight
from node.tools.demo_offers import federation_use, share_compute
from node.tools.processes import ROOT, free_port, serving, spawn

POLICIES = Path(__file__).resolve().parent / "policies"  # package data: ops/policies links here


@dataclass
class City:
    region: str
    name: str
    policy: str
    http_port: int
    grpc_port: int
    data: Path = Path()
    operator: str = ""
    proc: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def _setup(root: Path, cities: list[City]) -> None:
    from node.provision import init_node

    year = year_of(SystemClock().now_ms())
    for city in cities:
        city.data = root / city.name.lower()
        text = (POLICIES / f"{city.policy}-2026.toml").read_text()
        text = re.sub(r"^fiscal_year = \d+", f"fiscal_year = {year}", text, flags=re.M)
        fed = FederationConfig(
            port=city.grpc_port,
            plaintext=True,
            call_timeout_seconds=2.0,
            statement_recheck_seconds=2.0,
        )
        city.operator = init_node(
            city.data, city.region, city.name, text, city.http_port, "FULL", 1.0, fed
        )
    peer_all([(c.region, c.data) for c in cities], 50_000_000_00)  # ¥50,000,000 per window


async def _start(city: City, timeout: float = 30.0) -> None:
    city.proc = spawn(city.data, tied=True)
    deadline = time.monotonic() + timeout
    while serving(city.data, city.proc) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{city.name} did not start within {timeout}s; see {city.data / 'node.log'}"
            )
        await asyncio.sleep(0.05)


class Api:
    def __init__(self, session: aiohttp.ClientSession, city: City) -> None:
        self.session, self.city = session, city

    async def call(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.city.operator}"}
        async with self.session.request(
            method, self.city.base + path, json=body, headers=headers
        ) as resp:
            return resp.status, await resp.json()

    async def ok(self, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
        status, data = await self.call(method, path, token, body)
        if status >= 300:
            raise RuntimeError(f"{self.city.name} {method} {path}: {status} {data}")
        return data


HOLDERS: dict[str, list[tuple[str, str, str, str, str | None]]] = {
    "330100": [
        ("hz-startup", "91330100716105852F", "杭州云智科技有限公司 (start-up)", "startup", None),
        ("zju", "12100000400000624D", "浙江大学", "university", "330100"),
    ],
    "370200": [("qd-marine", "91370200MA3QD0001X", "青岛海洋智能有限公司", "enterprise", None)],
    "520100": [
        ("gy-bigdata", "91520100MA6GYE001Q", "贵阳大数据科技有限公司", "enterprise", None),
        (
            "hz-startup@gy",
            "91330100716105852F",
            "杭州云智科技有限公司 (applying in Guiyang)",
            "enterprise",
            "330100",
        ),
    ],
}
PROVIDERS: dict[str, list[tuple[str, str, str, str]]] = {
    "330100": [("hz-aicc", "91330100MA2B3C4D5N", "杭州人工智能计算中心", "computing_centre")],
    "370200": [("qd-cloud", "91370200MA3QDC0024", "青岛算力撮合平台", "matchmaking_partner")],
    "520100": [("gy-cluster", "91520100MA6DGY0015", "贵安超算集群", "computing_centre")],
}


def _fix_uscc(code: str) -> str:
    from node.domain.uscc import check_character

    return code[:17] + check_character(code[:17])


async def scenario(cities: dict[str, City]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        api = {r: Api(session, c) for r, c in cities.items()}
        for region, holders in HOLDERS.items():
            for key, code, name, category, home in holders:
                body: dict[str, Any] = {"uscc": _fix_uscc(code), "name": name, "category": category}
                if home:
                    body["region"] = home
                data = await api[region].ok("POST", "/v1/holders", body=body)
                cities[region].tokens[key], cities[region].ids[key] = (
                    data["token"],
                    data["holder"]["id"],
                )
        for region, providers in PROVIDERS.items():
            for key, code, name, kind in providers:
                body = {"uscc": _fix_uscc(code), "name": name, "kind": kind, "approved": True}
                data = await api[region].ok("POST", "/v1/providers", body=body)
                cities[region].tokens[key], cities[region].ids[key] = (
                    data["token"],
                    data["provider"]["id"],
                )

        decisions: list[tuple[str, str, dict[str, Any]]] = []
        vouchers: dict[str, dict[str, Any]] = {}

        async def demand(region: str, holder: str, cls: str, fen: int) -> None:
            body = {
                "compute_class": cls,
                "estimated_amount_fen": fen,
                "period_start": "2026-01-01",
                "period_end": "2026-12-31",
            }
            data = await api[region].ok("POST", "/v1/demands", cities[region].tokens[holder], body)
            decisions.append((region, holder, data["decision"]))
            if data["voucher"]:
                vouchers[holder] = data["voucher"]

        await demand(
            "330100", "hz-startup", "model_services", 1_200_000_000
        )  # ¥12M of model services
        # ¥400k of domestic chips at 30%: the small-contract 50% is for enterprises (R2)
        await demand("330100", "zju", "domestic_chips", 40_000_000)
        await demand("370200", "qd-marine", "other_compute", 200_000_000)  # ¥2M at Qingdao's 20%
        await demand("520100", "gy-bigdata", "model_services", 500_000_000)
        await demand("520100", "hz-startup@gy", "domestic_chips", 300_000_000)  # a hub: 省内外
        await demand("330100", "zju", "storage", 10_000_000)  # storage is not compute: declined

        async def authorize(region: str, holder: str, at: str, provider: str, max_fen: int) -> str:
            v = vouchers[holder]
            body = {
                "provider_id": cities[at].ids[provider],
                "provider_region": at,
                "max_fen": max_fen,
                "expires_at": v["expires_at"],
            }
            data = await api[region].ok(
                "POST",
                f"/v1/vouchers/{v['id']}/authorizations",
                cities[region].tokens[holder],
                body,
            )
            return str(data["code"])

        def order(c: str, oid: str, fen: int, cls: str) -> dict[str, Any]:
            return {"code": c, "order_id": oid, "order_amount_fen": fen, "compute_class": cls}

        flows: list[tuple[str, str, dict[str, Any]]] = []

        async def redeem(
            at: str, provider: str, c: str, oid: str, fen: int, cls: str, label: str
        ) -> dict[str, Any]:
            data = await api[at].ok(
                "POST", "/v1/redemptions", cities[at].tokens[provider], order(c, oid, fen, cls)
            )
            flows.append((label, at, data["hold"]))
            return dict(data["hold"])

        # The headline: a Hangzhou start-up's voucher pays part of a Guiyang cluster's order.
        await redeem(
            "520100",
            "gy-cluster",
            await authorize("330100", "hz-startup", "520100", "gy-cluster", 90_000_000),
            "GA-2026-0042",
            300_000_000,
            "model_services",
            "Hangzhou voucher at Guiyang cluster",
        )
        # Local redemptions in each city.
        await redeem(
            "330100",
            "hz-aicc",
            await authorize("330100", "zju", "330100", "hz-aicc", 20_000_000),
            "HZAICC-0007",
            30_000_000,
            "domestic_chips",
            "Hangzhou voucher at Hangzhou centre",
        )
        await redeem(
            "520100",
            "gy-cluster",
            await authorize("520100", "gy-bigdata", "520100", "gy-cluster", 50_000_000),
            "GA-2026-0043",
            100_000_000,
            "model_services",
            "Guiyang voucher at Guiyang cluster",
        )
        # Qingdao's enterprise trains in Hangzhou: hold, then capture what was delivered.
        qd_code = await authorize("370200", "qd-marine", "330100", "hz-aicc", 40_000_000)
        held = await api["330100"].ok(
            "POST",
            "/v1/holds",
            cities["330100"].tokens["hz-aicc"],
            order(qd_code, "HZAICC-0008", 150_000_000, "other_compute"),
        )
        flows.append(("Qingdao voucher held at Hangzhou", "330100", held["hold"]))
        cap = await api["330100"].ok(
            "POST",
            f"/v1/holds/{held['hold']['id']}/capture",
            cities["330100"].tokens["hz-aicc"],
            {"amount_fen": 24_000_000},
        )
        flows.append(("…and captured on delivery", "330100", cap["hold"]))
        # Guiyang's hub voucher, held by the Hangzhou start-up, spent back home in Hangzhou.
        await redeem(
            "330100",
            "hz-aicc",
            await authorize("520100", "hz-startup@gy", "330100", "hz-aicc", 10_000_000),
            "HZAICC-0009",
            20_000_000,
            "domestic_chips",
            "Guiyang voucher at Hangzhou centre",
        )
        # The same order again, with a fresh code: one order is subsidised once, by any city.
        again = await authorize("330100", "hz-startup", "520100", "gy-cluster", 1_000_000)
        status, refused = await api["520100"].call(
            "POST",
            "/v1/redemptions",
            cities["520100"].tokens["gy-cluster"],
            order(again, "GA-2026-0042", 300_000_000, "model_services"),
        )
        budgets = {r: (await api[r].ok("GET", "/v1/budget"))["items"] for r in cities}
        return {
            "decisions": decisions,
            "flows": flows,
            "double": (status, refused["error"]["code"]),
            "budgets": budgets,
        }


def _summary(
    cities: dict[str, City], result: dict[str, Any], matrix: dict[tuple[str, str], int]
) -> str:
    names = {r: c.name for r, c in cities.items()}
    out = ["", "Suanli demo: a three-city federation on 127.0.0.1", ""]
    for c in cities.values():
        out.append(
            f"  {c.name:<9} {c.region}  REST {c.base}  gRPC 127.0.0.1:{c.grpc_port}  metrics {c.base}/metrics"
        )
    out += ["", "Issuance decisions (免申即享):"]
    for region, holder, d in result["decisions"]:
        what = yuan(d["amount_fen"]) if d["outcome"] == "issued" else d["reasons"][-1]["code"]
        out.append(
            f"  {names[region]:<9} {holder:<14} {d['compute_class']:<15} {d['outcome']:<9} {what}"
        )
    out.append("Redemptions:")
    for label, _at, h in result["flows"]:
        out.append(
            f"  {label:<40} {h['order_id']:<13} held {yuan(h['amount_fen']):>13}  captured {yuan(h['captured_fen']):>13}  {h['state']}"
        )
    status, code = result["double"]
    out.append(f"  the same Guiyang order again with a new code: refused {status} {code}")
    out.append("Budgets:")
    for region, items in result["budgets"].items():
        for b in items:
            out.append(
                f"  {names[region]:<9} {b['fiscal_year']}: {yuan(b['budget_fen'])}, committed {yuan(b['committed_fen'])}, remaining {yuan(b['remaining_fen'])}"
            )
    out.append("Cross-region money (issuer → acquirer, captured):")
    for (issuer, acquirer), fen in sorted(matrix.items()):
        out.append(f"  {names[issuer]:<9} → {names[acquirer]:<9} {yuan(fen)}")
    out += ["", "Tokens (operator):"]
    for c in cities.values():
        out.append(f"  {c.name:<9} {c.operator}")
    first = next(iter(cities.values()))
    out += [
        "Try:",
        f"  curl -H 'Authorization: Bearer {first.operator}' {first.base}/v1/holds",
        f"  curl {first.base}/metrics | grep suanli_",
    ]
    return "\n".join(out)


async def _platform_links(cities: dict[str, City]) -> str:
    """The platform's pages, with a one-time sign-in link for a holder, a provider and the
    operator of each city (valid a day)."""
    first_holder = {r: h[0][0] for r, h in HOLDERS.items()}
    first_provider = {r: p[0][0] for r, p in PROVIDERS.items()}
    out = ["", "The platform (open a link once to sign in; each works once, for a day):"]
    async with aiohttp.ClientSession() as session:
        for region, city in cities.items():
            api = Api(session, city)
            out.append(f"  {city.name:<9} {city.base}/ui/")
            for role, subject in (
                ("holder", city.ids[first_holder[region]]),
                ("provider", city.ids[first_provider[region]]),
                ("operator", "self"),
            ):
                link = await api.ok("POST", "/v1/signin-links", body={"subject": subject})
                out.append(f"    {role:<9} {city.base}{link['path']}")
    return "\n".join(out)


async def settle(cities: dict[str, City], timeout: float = 60.0) -> dict[str, Any]:
    """Close the current window in every city, wait for every pair statement to be
    countersigned, then fetch payouts, statements and the netting."""
    async with aiohttp.ClientSession() as session:
        api = {r: Api(session, c) for r, c in cities.items()}
        closed = {
            r: await api[r].ok("POST", "/v1/settlement/windows/close", body={}) for r in cities
        }
        deadline = time.monotonic() + timeout
        agreed = False
        while time.monotonic() < deadline:
            states = [
                s["state"]
                for r in cities
                for s in (await api[r].ok("GET", "/v1/settlement/statements"))["items"]
            ]
            if (
                states and all(s == "agreed" for s in states) and len(states) == 6
            ):  # three pairs, both sides
                agreed = True
                break
            await asyncio.sleep(0.5)
        payouts = {r: (await api[r].ok("GET", "/v1/settlement/payouts"))["items"] for r in cities}
        # 兑付: each city's finance bureau pays its providers what their statements say.
        today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
        payments: dict[str, list[dict[str, Any]]] = {r: [] for r in cities}
        for r, items in payouts.items():
            for n, item in enumerate(items):
                body = {
                    "window": item["window"],
                    "provider_id": item["provider_id"],
                    "amount_fen": item["unpaid_fen"],
                    "value_date": today,
                    "bank_reference": f"DEMO-{r}-{item['window']}-{n + 1}",
                }
                if item["unpaid_fen"] > 0:
                    made = await api[r].ok("POST", "/v1/settlement/payments", body=body)
                    payments[r].append(made["payment"])
        statements = (await api["330100"].ok("GET", "/v1/settlement/statements"))["items"]
        statements += [
            s
            for s in (await api["520100"].ok("GET", "/v1/settlement/statements"))["items"]
            if s["issuer"] == "370200"
        ]
        nettings = [await api[r].ok("GET", "/v1/settlement/netting") for r in cities]
        same = all(
            n["transfers"] == nettings[0]["transfers"]
            and n["positions"] == nettings[0]["positions"]
            for n in nettings
        )
        transfers = await _settle_between(api, today, deadline)
        windows = {
            r: [
                w
                for w in (await api[r].ok("GET", "/v1/settlement/windows"))["items"]
                if w["state"] != "open"
            ]
            for r in cities
        }
        return {
            "closed": closed,
            "agreed": agreed and same,
            "payouts": payouts,
            "payments": payments,
            "statements": statements,
            "netting": nettings[0],
            "transfers": transfers,
            "windows": windows,
        }


async def _settle_between(api: dict[str, Api], today: str, deadline: float) -> list[dict[str, Any]]:
    """Each city pays what it owes each partner city net (its operator records the bank
    transfer, its node advises the payee), and each payee's operator confirms receipt."""
    made = []
    for r in api:
        for due in (await api[r].ok("GET", "/v1/settlement/transfers/due"))["items"]:
            if due["payer"] != r or due["amount_fen"] == 0:
                continue
            body = {
                "peer": due["payee"],
                "amount_fen": due["amount_fen"],
                "value_date": today,
                "reference": f"DEMO-CT-{r}-{due['payee']}",
            }
            made.append(
                (await api[r].ok("POST", "/v1/settlement/transfers", body=body))["transfer"]
            )

    async def state(region: str, transfer_id: str) -> str:
        status, data = await api[region].call("GET", f"/v1/settlement/transfers/{transfer_id}")
        return str(data["transfer"]["state"]) if status == 200 else ""

    for t in made:  # the payee's operator finds the money on its account and confirms
        while await state(t["payee"], t["id"]) != "awaiting_confirmation":
            if time.monotonic() > deadline:
                raise RuntimeError(f"transfer {t['id']} did not reach {t['payee']}")
            await asyncio.sleep(0.2)
        await api[t["payee"]].ok(
            "POST", f"/v1/settlement/transfers/{t['id']}/confirmation", body={}
        )
    for t in made:  # ... and the payer's node has the signed confirmation
        while await state(t["payer"], t["id"]) != "confirmed":
            if time.monotonic() > deadline:
                raise RuntimeError(f"transfer {t['id']} was not confirmed to {t['payer']}")
            await asyncio.sleep(0.2)
        t["state"] = "confirmed"
    return made


def _settlement_summary(cities: dict[str, City], settled: dict[str, Any]) -> str:
    names = {r: c.name for r, c in cities.items()}
    out = ["", "Settlement: each city closed its current window"]
    for region, closed in settled["closed"].items():
        out.append(
            f"  {names[region]:<9} window {closed['window']}: {closed['payouts']} payout statement(s), {closed['captures']} capture(s)"
        )
    out.append("Provider payouts (signed by the provider's city):")
    for region, items in settled["payouts"].items():
        for p in items:
            st = p["statement"]
            out.append(
                f"  {names[region]:<9} {st['provider_name']:<22} {p['count']} capture(s)  {yuan(p['total_fen']):>14}  key {p['key_id']}"
            )
    out.append("Payments to providers (兑付), each with an advice signed by the city's key:")
    named = {
        p["provider_id"]: p["statement"]["provider_name"]
        for items in settled["payouts"].values()
        for p in items
    }
    for region, made in settled.get("payments", {}).items():
        for m in made:
            out.append(
                f"  {names[region]:<9} {named[m['provider_id']]:<22} {yuan(m['amount_fen']):>14}  "
                f"value date {m['value_date']}  ref {m['bank_reference']}"
            )
    out.append("Pair statements (the acquirer's, countersigned by the issuer):")
    seen = set()
    for s in settled["statements"]:
        key = (s["issuer"], s["acquirer"], s["window"])
        if key in seen:
            continue
        seen.add(key)
        signed = "countersigned" if s["state"] == "agreed" else s["state"]
        out.append(
            f"  {names[s['issuer']]:<9} owes {names[s['acquirer']]:<9} {yuan(s['total_fen']):>14}  ({s['count']} capture(s), {s['window']}, {signed})"
        )
    net = settled["netting"]
    out.append("Net positions (every city computes the same, from countersigned statements):")
    for region, fen in net["positions"].items():
        out.append(f"  {names[region]:<9} {yuan(fen):>15}")
    out.append(f"Fewest transfers, if a clearing agent settled for all ({len(net['transfers'])}):")
    for t in net["transfers"]:
        out.append(f"  {names[t['from']]:<9} pays {names[t['to']]:<9} {yuan(t['amount_fen']):>14}")
    out.append(
        "Transfers between cities (each pair's net; advised by the payer, confirmed by the payee):"
    )
    for t in settled.get("transfers", []):
        out.append(
            f"  {names[t['payer']]:<9} paid {names[t['payee']]:<9} {yuan(t['amount_fen']):>14}  "
            f"ref {t['reference']}  {len(t['statements'])} statement(s)  {t['state']} by "
            f"{names[t['payee']]}"
        )
    out.append("Windows:")
    for region, items in settled.get("windows", {}).items():
        for w in items:
            missing = f"  missing: {'; '.join(w['missing'])}" if w["missing"] else ""
            out.append(f"  {names[region]:<9} {w['window_id']:<32} {w['state']}{missing}")
    return "\n".join(out)


def _matrix(cities: dict[str, City]) -> dict[tuple[str, str], int]:
    import sqlite3

    matrix: dict[tuple[str, str], int] = {}
    for region, city in cities.items():
        with sqlite3.connect(f"file:{city.data / 'suanli.db'}?mode=ro", uri=True) as conn:
            for issuer, fen in conn.execute(
                "SELECT issuer_region, SUM(captured_fen) FROM remote_holds WHERE state = 'captured' GROUP BY issuer_region"
            ):
                matrix[(issuer, region)] = int(fen)
    return matrix


def _checks(cities: dict[str, City]) -> list[str]:
    problems: list[str] = []
    for city in cities.values():
        result = subprocess.run(
            [sys.executable, "-m", "node.cli", "check", "--data", str(city.data)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if result.returncode != 0:
            problems.append(f"{city.name}: {result.stdout.strip()} {result.stderr.strip()}")
    for a in cities.values():
        for b in cities.values():
            if a is not b:
                problems += compare(a.region, a.data, b.region, b.data)
    return problems


async def run_demo(args: argparse.Namespace) -> int:
    root = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="suanli-demo-"))
    base = args.port
    specs = [
        ("330100", "Hangzhou", "hangzhou"),
        ("370200", "Qingdao", "qingdao"),
        ("520100", "Guiyang", "guiyang"),
    ]
    cities = {}
    for i, (region, name, policy) in enumerate(specs):
        http_port = free_port() if base == 0 else base + i
        grpc_port = free_port() if base == 0 else base + 1000 + i
        cities[region] = City(region, name, policy, http_port, grpc_port)
    _setup(root, list(cities.values()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for city in cities.values():
            await _start(city)
        result = await scenario(cities)
        async with aiohttp.ClientSession() as session:
            shared = await share_compute({r: Api(session, c) for r, c in cities.items()}, cities)
        deadline = time.monotonic() + 30
        while any(in_flight(c.data) for c in cities.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        settled = await settle(cities)
        async with aiohttp.ClientSession() as session:
            shared += await federation_use(
                {r: Api(session, c) for r, c in cities.items()},
                {r: c.name for r, c in cities.items()},
            )
        problems = _checks(cities)
        if not settled["agreed"]:
            problems.append("not every pair statement was countersigned within 60 s")
        print(_summary(cities, result, _matrix(cities)))
        print("\n".join(shared))
        print(_settlement_summary(cities, settled))
        print(await _platform_links(cities))
        print(f"\nData and logs: {root}")
        if problems:
            print("CHECKS FAILED:\n  " + "\n  ".join(problems))
        else:
            print("Every node's books balance and every pair of cities agrees.")
        if args.once:
            return 1 if problems else 0
        print("\nServing until Ctrl-C.", flush=True)
        while not stop.is_set() and all(
            c.proc is not None and c.proc.poll() is None for c in cities.values()
        ):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
        print("stopping")
        return 0
    finally:
        for city in cities.values():
            if city.proc is not None and city.proc.poll() is None:
                city.proc.terminate()
        for city in cities.values():
            if city.proc is not None:
                try:
                    city.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    city.proc.kill()


__all__ = ["run_demo"]
