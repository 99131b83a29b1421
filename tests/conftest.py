"""Shared fixtures: a real node on a real SQLite file, its real aiohttp app, a manual clock.

Every test that uses ``node`` gets the money invariants checked when it ends: a test that moves
money can never leave the books unbalanced without failing.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import settings

from node.app import build_node, make_app
from node.clock import ManualClock
from node.node import Node
from node.provision import init_node
from tests import engines

ROOT = Path(__file__).resolve().parent.parent

# How hard the generated tests try: ``make test`` runs depth 1 (fast enough to run after every
# change); ``make deep`` (which .ci/run also runs) runs depth 5: five times the hypothesis
# examples and schemathesis cases.
DEPTH = int(os.environ.get("SUANLI_TEST_DEPTH", "1"))


# No deadline on any generated example: these machines are shared, and an example that took
# 341 ms under load once failed a run (no timed unit tests, as the standards say).
settings.register_profile("suanli", deadline=None)
settings.load_profile("suanli")


def examples(n: int) -> int:
    """``n`` generated examples at depth 1, scaled by SUANLI_TEST_DEPTH."""
    return n * DEPTH


# The files whose tests start real processes, longest first (seconds each, on 2 cores). Run
# first, so that with ``--dist load`` the long tests overlap the short ones instead of ending
# the run alone (longest-first scheduling); every other file keeps its place after them.
SLOW_FIRST = (
    "test_schemathesis.py",  # ~20 s per role
    "test_installed.py",  # ~20 s: a wheel, a venv, a node, the demo
    "test_standby.py",
    "test_settlement.py",
    "test_clearing.py",  # ~4 s each, seven of them
    "test_platform.py",  # ~13 s: two nodes and a browser
    "test_bench.py",
    "test_cli.py",
    "test_properties.py",
    "test_node_files.py",
    "test_prometheus.py",
    "test_federation.py",
    "test_faults.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))


POLICIES = ROOT / "ops" / "policies"
START = int(
    dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp() * 1000
)

# Real, check-character-valid codes (GB 32100-2015).
HZ_ENTERPRISE = "91330100716105852F"
SZ_ENTERPRISE = "914403001922038216"
UNIVERSITY = "12100000400000624D"
INSTITUTE = "1210000042500615X0"
SH_ENTERPRISE = "91310000132260250X"


def policy_text(name: str = "hangzhou", **replace: Any) -> str:
    text = (POLICIES / f"{name}-2026.toml").read_text()
    for key, value in replace.items():
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.split("=")[0].strip() == key:
                lines[i] = f"{key} = {value}"
                break
        else:
            raise KeyError(key)
        text = "\n".join(lines) + "\n"
    return text


def make_node(
    tmp_path: Path,
    clock: ManualClock,
    policy: str | None = None,
    region: str = "330100",
    federation: Any = None,
) -> tuple[Node, str]:
    data = tmp_path / f"node-{region}"
    token = init_node(
        data,
        region,
        "Test City",
        policy or policy_text(),
        0,
        "FULL",
        1.0,
        federation,
        storage=engines.storage(tmp_path),
    )
    return build_node(data, clock), token


def snapshot(node: Node) -> dict[str, Any]:
    """Everything in the books, for 'this bad request changed nothing' assertions."""

    def txn(conn: sqlite3.Connection) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for table in (
            "ledger",
            "accounts",
            "vouchers",
            "holds",
            "authorizations",
            "decisions",
            "events",
            "holders",
            "providers",
            "tokens",
            "audit",
            "policies",
        ):
            out[table] = [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY 1")]
        return out

    return node.db.run_sync("snapshot", txn)


@pytest.fixture(scope="session", autouse=True)
def _engine() -> Iterator[None]:
    """The PostgreSQL cluster of this test process, if the tests run on PostgreSQL."""
    yield
    engines.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def node_and_token(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[Node, str]]:
    node, token = make_node(tmp_path, clock)
    assert node.db.engine == engines.ENGINE  # the books are where the run says they are
    yield node, token
    problems = node.check()
    node.close()
    assert problems == [], "money invariants violated:\n" + "\n".join(problems)


@pytest.fixture
def node(node_and_token: tuple[Node, str]) -> Node:
    return node_and_token[0]


class Api:
    """A thin client: a role's token and assertions on status and error code."""

    def __init__(self, client: TestClient[Any, Any], token: str | None) -> None:
        self.client = client
        self.token = token

    def as_(self, token: str | None) -> Api:
        return Api(self.client, token)

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        expect: int | None = None,
        code: str | None = None,
        **kw: Any,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        resp = await self.client.request(method, path, json=body, headers=headers, **kw)
        data = await resp.json()
        if code is not None:
            assert "error" in data, (
                f"{method} {path}: expected error {code}, got {resp.status} {data}"
            )
            assert data["error"]["code"] == code, f"{method} {path}: {resp.status} {data}"
        if expect is not None:
            assert resp.status == expect, (
                f"{method} {path}: expected {expect}, got {resp.status} {data}"
            )
        return data

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return await self.call("POST", path, body if body is not None else {}, **kw)


@pytest.fixture
async def api(aiohttp_client: Any, node_and_token: tuple[Node, str]) -> AsyncIterator[Api]:
    node, token = node_and_token
    client = await aiohttp_client(make_app(node, sweep=False))
    yield Api(client, token)


class World:
    """A populated city: holders and providers registered through the API, with tokens."""

    def __init__(self, api: Api) -> None:
        self.op = api
        self.holders: dict[str, Api] = {}
        self.holder_ids: dict[str, str] = {}
        self.providers: dict[str, Api] = {}
        self.provider_ids: dict[str, str] = {}

    async def holder(self, key: str, uscc: str, category: str = "enterprise", **extra: Any) -> Api:
        data = await self.op.post(
            "/v1/holders", {"uscc": uscc, "name": key, "category": category, **extra}, expect=201
        )
        self.holder_ids[key] = data["holder"]["id"]
        self.holders[key] = self.op.as_(data["token"])
        return self.holders[key]

    async def provider(self, key: str, uscc: str, approved: bool = True, **extra: Any) -> Api:
        body = {
            "uscc": uscc,
            "name": key,
            "kind": "computing_centre",
            "approved": approved,
            **extra,
        }
        data = await self.op.post("/v1/providers", body, expect=201)
        self.provider_ids[key] = data["provider"]["id"]
        self.providers[key] = self.op.as_(data["token"])
        return self.providers[key]

    async def voucher(
        self, holder: str, estimate: int, compute_class: str = "model_services"
    ) -> dict[str, Any]:
        data = await self.holders[holder].post(
            "/v1/demands", demand(compute_class, estimate), expect=201
        )
        assert data["decision"]["outcome"] == "issued", data
        voucher: dict[str, Any] = data["voucher"]
        return voucher

    async def code(
        self,
        holder: str,
        voucher_id: str,
        provider: str,
        max_fen: int,
        expires: str = "2026-06-01T00:00:00Z",
    ) -> str:
        body = {
            "provider_id": self.provider_ids[provider],
            "max_fen": max_fen,
            "expires_at": expires,
        }
        data = await self.holders[holder].post(
            f"/v1/vouchers/{voucher_id}/authorizations", body, expect=201
        )
        code: str = data["code"]
        return code


def demand(compute_class: str, estimate: int, **extra: Any) -> dict[str, Any]:
    return {
        "compute_class": compute_class,
        "estimated_amount_fen": estimate,
        "period_start": "2026-03-01",
        "period_end": "2026-12-31",
        **extra,
    }


def order(
    code: str, order_id: str, amount: int, compute_class: str = "model_services"
) -> dict[str, Any]:
    return {
        "code": code,
        "order_id": order_id,
        "order_amount_fen": amount,
        "compute_class": compute_class,
    }


# Two more real codes that pass the check, for providers: computed, not made up by hand.
def valid_uscc(body17: str) -> str:
    from node.domain.uscc import check_character

    return body17 + check_character(body17)


PROVIDER_A = valid_uscc("91330100MA2B3C4D5")
PROVIDER_B = valid_uscc("91330100MA2H7J8K9")
START_UP = valid_uscc("91330106MA27XYW01")


@pytest.fixture
async def world(api: Api) -> World:
    w = World(api)
    await w.holder("acme", HZ_ENTERPRISE)
    await w.holder("zju", UNIVERSITY, category="university", region="330100")
    await w.provider("alicloud", PROVIDER_A)
    await w.provider("sugon", PROVIDER_B)
    return w


from tests.fakepeer import rig  # noqa: E402  (a fixture, registered here for every module)

__all__ = ["rig"]
