"""A federation of real node processes for tests, in the manner of Bitcoin Core's functional
test framework: start all or none, kill -9, restart, cut a node off the network and heal it,
wait on conditions (never sleeps), keep the data folders of a failed test and merge the logs.

Every node's gRPC endpoint, as its peers know it, is a small TCP proxy in the test process, so
a node can be cut off (the proxy drops connections and refuses new ones) and healed.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client as http_client
import json
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.app import build_node
from node.clock import SystemClock, year_of
from node.config import FederationConfig
from node.config import load as load_config
from node.provision import init_node, peer_all
from node.store.engine import connect_readonly
from node.tools.crosscheck import compare, in_flight
from node.tools.processes import free_port
from tests import engines
from tests.conftest import policy_text
from tests.proc import NodeProcess, wait_until

YEAR = year_of(SystemClock().now_ms())


def http(
    method: str, url: str, token: str | None = None, body: Any = None, timeout: float = 15.0
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            ctype = resp.headers.get_content_type()
            return resp.status, json.loads(raw) if ctype == "application/json" else raw.decode()
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())
    except (
        ConnectionError,
        urllib.error.URLError,
        TimeoutError,
        http_client.RemoteDisconnected,
    ) as err:
        return 0, {"error": {"code": "connection", "message": str(err)}}


@dataclass(frozen=True)
class OneCity:
    """What ``one_city`` made: tokens and ids, a voucher, a one-time code for the provider."""

    holder: str
    provider: str
    provider_id: str
    voucher: dict[str, Any]
    code: str


def one_city(url: str, op: str, max_fen: int = 5_000_000) -> OneCity:
    """Through the REST API of a running Hangzhou node: a holder (an enterprise), an approved
    provider, the voucher of a ¥1,000,000 model-services demand (¥300,000), and a one-time code
    for the provider up to ``max_fen``."""
    from tests.conftest import HZ_ENTERPRISE, PROVIDER_A

    status, h = http(
        "POST",
        f"{url}/v1/holders",
        op,
        {"uscc": HZ_ENTERPRISE, "name": "Acme", "category": "enterprise"},
    )
    assert status == 201, h
    status, p = http(
        "POST",
        f"{url}/v1/providers",
        op,
        {"uscc": PROVIDER_A, "name": "Centre", "kind": "computing_centre", "approved": True},
    )
    assert status == 201, p
    demand = {
        "compute_class": "model_services",
        "estimated_amount_fen": 100_000_000,
        "period_start": "2026-01-01",
        "period_end": "2026-12-31",
    }
    status, d = http("POST", f"{url}/v1/demands", h["token"], demand)
    assert status == 201 and d["voucher"], d
    voucher = d["voucher"]
    body = {
        "provider_id": p["provider"]["id"],
        "max_fen": max_fen,
        "expires_at": voucher["expires_at"],
    }
    status, a = http("POST", f"{url}/v1/vouchers/{voucher['id']}/authorizations", h["token"], body)
    assert status == 201, a
    return OneCity(h["token"], p["token"], p["provider"]["id"], voucher, a["code"])


def make_tls(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """A test CA (made once per folder) and a certificate for 127.0.0.1 signed by it, usable
    as server and as client (mutual TLS). Returns (certificate, key, CA certificate)."""
    folder.mkdir(exist_ok=True)
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    if not ca.exists():
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                *curve,
                "-keyout",
                str(ca_key),
                "-out",
                str(ca),
                "-days",
                "2",
                "-subj",
                "/CN=Suanli test CA",
            ],
            check=True,
            capture_output=True,
        )
    cert, key, csr, ext = (
        folder / f"{name}{suffix}" for suffix in (".pem", ".tls.key", ".csr", ".ext")
    )
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    subprocess.run(
        ["openssl", "req", *curve, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-out",
            str(cert),
            "-days",
            "2",
            "-extfile",
            str(ext),
        ],
        check=True,
        capture_output=True,
    )
    key.chmod(0o600)
    return cert, key, ca


class Proxy:
    """A TCP proxy on loopback that can be cut and healed. Cut, it drops the connections it
    carries and black-holes new ones (accepts, then never answers), as a partitioned network
    does: callers wait out their deadlines."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.cut = False
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._held: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            self._held.add(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while not self.cut and (chunk := await src.read(65536)):
                    dst.write(chunk)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def set_cut(self, cut: bool) -> None:
        def apply() -> None:
            self.cut = cut
            for w in list(self._writers if cut else self._held):
                w.close()
            if not cut:
                self._held.clear()

        self._loop.call_soon_threadsafe(apply)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


@dataclass
class Member:
    region: str
    name: str
    data: Path
    grpc_port: int
    proxy: Proxy
    operator: str
    process: NodeProcess
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    # More endpoints of the same node, listed after ``proxy`` in its card (``endpoints``).
    more: list[Proxy] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.process.url

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        expect: int | None = None,
    ) -> Any:
        status, data = http(method, self.url + path, token or self.operator, body)
        if expect is not None:
            assert status == expect, (
                f"{self.name} {method} {path}: expected {expect}, got {status} {data}"
            )
        return data

    def call_raw(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        return http(method, self.url + path, token or self.operator, body)

    def db(self) -> Any:
        """A read-only connection to this member's books, on its engine."""
        conn = connect_readonly(load_config(self.data))
        return conn


CITIES = {
    "330100": ("Hangzhou", "hangzhou"),
    "370200": ("Qingdao", "qingdao"),
    "520100": ("Guiyang", "guiyang"),
    # Two more, for five-city runs: Hangzhou's policy under their own region code.
    "310100": ("Shanghai", "hangzhou"),
    "440300": ("Shenzhen", "hangzhou"),
}


def _run_engine(region: str, folder: Path) -> dict[str, str] | None:
    return engines.storage(folder)


class Cluster:
    def __init__(
        self,
        root: Path,
        regions: list[str],
        sweep_interval: float = 0.5,
        policy_edit: Callable[[str, str], str] | None = None,
        call_timeout_seconds: float = 1.0,
        exposure_cap_fen: int = 10**12,
        mutual_tls: bool = False,
        statement_inline_records: int = 2_000,
        statements_page: int = 500,
        statement_recheck_seconds: float = 1.0,
        endpoints: int = 1,
        storage: Callable[[str, Path], dict[str, str] | None] | None = None,
    ) -> None:
        """``endpoints``: how many endpoints each node's card lists, each its own proxy to the
        node (a card listing several, docs/protocol.md §6). ``storage``: a member's engine
        settings by region and folder (the run's engine, tests/engines.py, by default)."""
        self.root = root
        self.members: list[Member] = []
        for region in regions:
            name, policy = CITIES[region]
            data = root / name.lower()
            grpc_port = free_port()
            proxy = Proxy(grpc_port)
            more = [Proxy(grpc_port) for _ in range(endpoints - 1)]
            tls = make_tls(root / "tls", region) if mutual_tls else None
            fed = FederationConfig(
                port=grpc_port,
                endpoint=f"127.0.0.1:{proxy.port}",
                endpoints=tuple(f"127.0.0.1:{p.port}" for p in [proxy, *more]) if more else (),
                plaintext=tls is None,
                tls_cert=str(tls[0]) if tls else "",
                tls_key=str(tls[1]) if tls else "",
                tls_ca=str(tls[2]) if tls else "",
                mutual_tls=tls is not None,
                call_timeout_seconds=call_timeout_seconds,
                backoff_base_seconds=0.05,
                backoff_cap_seconds=1.0,
                statement_recheck_seconds=statement_recheck_seconds,
                statement_retry_seconds=0.2,
                statement_inline_records=statement_inline_records,
                statements_page=statements_page,
            )
            text = policy_text(policy, fiscal_year=str(YEAR), region=f'"{region}"')
            if policy_edit is not None:
                text = policy_edit(region, text)
            token = init_node(
                data,
                region,
                name,
                text,
                0,
                "FULL",
                sweep_interval,
                fed,
                storage=(storage or _run_engine)(region, data.parent),
            )
            self.members.append(
                Member(region, name, data, grpc_port, proxy, token, NodeProcess(data), more=more)
            )
        peer_all([(m.region, m.data) for m in self.members], exposure_cap_fen)

    def __getitem__(self, region: str) -> Member:
        return next(m for m in self.members if m.region == region)

    def start(self, env: dict[str, dict[str, str]] | None = None) -> Cluster:
        """Start every node, or none: all are started, then each is waited for (their start-ups
        overlap); if one fails, the others are stopped."""
        try:
            for m in self.members:
                m.process.spawn((env or {}).get(m.region))
            for m in self.members:
                m.process.wait_serving()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Two phases: ask every node to stop, then wait for each."""
        for m in self.members:
            m.process.terminate()
        for m in self.members:
            m.process.wait_stopped()

    def close(self) -> None:
        self.stop()
        for m in self.members:
            for proxy in [m.proxy, *m.more]:
                proxy.close()

    def kill(self, region: str) -> None:
        self[region].process.kill()

    def restart(self, region: str, env: dict[str, str] | None = None) -> None:
        self[region].process.start(env)

    def cut(self, region: str) -> None:
        self[region].proxy.set_cut(True)

    def heal(self, region: str) -> None:
        self[region].proxy.set_cut(False)

    @contextlib.contextmanager
    def session(self) -> Iterator[Cluster]:
        """Yield the cluster; on failure print where its data is kept and its merged logs;
        always stop its processes and proxies."""
        try:
            yield self
        except BaseException:
            print(f"data kept in {self.root}\n--- merged logs ---\n{self.logs()[-8000:]}")
            raise
        finally:
            self.close()

    def logs(self) -> str:
        """Every node's log, merged and sorted by time (each line starts with UTC ms)."""
        lines = []
        for m in self.members:
            lines += [line for line in m.process.log().splitlines() if line[:4].isdigit()]
        return "\n".join(sorted(lines))

    # Populating ---------------------------------------------------------------------------

    def holder(
        self,
        region: str,
        key: str,
        uscc: str,
        category: str = "enterprise",
        home: str | None = None,
    ) -> str:
        m = self[region]
        body = {"uscc": uscc, "name": key, "category": category, "region": home or region}
        data = m.call("POST", "/v1/holders", body=body, expect=201)
        m.tokens[key], m.ids[key] = data["token"], data["holder"]["id"]
        return str(data["holder"]["id"])

    def provider(self, region: str, key: str, uscc: str, approved: bool = True) -> str:
        m = self[region]
        body = {"uscc": uscc, "name": key, "kind": "computing_centre", "approved": approved}
        data = m.call("POST", "/v1/providers", body=body, expect=201)
        m.tokens[key], m.ids[key] = data["token"], data["provider"]["id"]
        return str(data["provider"]["id"])

    def voucher(
        self, region: str, holder: str, estimate: int, compute_class: str = "model_services"
    ) -> dict[str, Any]:
        m = self[region]
        body = {
            "compute_class": compute_class,
            "estimated_amount_fen": estimate,
            "period_start": "2026-01-01",
            "period_end": "2026-12-31",
        }
        data = m.call("POST", "/v1/demands", m.tokens[holder], body, expect=201)
        assert data["voucher"], data
        voucher: dict[str, Any] = data["voucher"]
        return voucher

    def code(
        self,
        region: str,
        holder: str,
        voucher: dict[str, Any],
        provider_region: str,
        provider: str,
        max_fen: int,
    ) -> str:
        m = self[region]
        body = {
            "provider_id": self[provider_region].ids[provider],
            "provider_region": provider_region,
            "max_fen": max_fen,
            "expires_at": voucher["expires_at"],
        }
        data = m.call(
            "POST",
            f"/v1/vouchers/{voucher['id']}/authorizations",
            m.tokens[holder],
            body,
            expect=201,
        )
        return str(data["code"])

    def redeem_across(
        self,
        issuer: str,
        holder: str,
        acquirer: str,
        provider: str,
        order_id: str,
        order_fen: int = 1_000_000,
        expect: int | None = 201,
    ) -> tuple[int, Any]:
        """A fresh voucher of ``issuer``'s ``holder`` redeemed in one step at ``acquirer``'s
        ``provider``; the answer's status and body (checked when ``expect`` is given)."""
        v = self.voucher(issuer, holder, 100_000_000)
        code = self.code(issuer, holder, v, acquirer, provider, 5_000_000)
        m = self[acquirer]
        body = {
            "code": code,
            "order_id": order_id,
            "order_amount_fen": order_fen,
            "compute_class": "model_services",
        }
        status, data = m.call_raw("POST", "/v1/redemptions", m.tokens[provider], body)
        if expect is not None:
            assert status == expect, f"{m.name} POST /v1/redemptions: {status} {data}"
        return status, data

    # Checks -------------------------------------------------------------------------------

    def check_all(self) -> None:
        """Every node's own invariants, and every pair's records agreeing."""
        for m in self.members:  # in this process, beside the running node (WAL readers)
            node = build_node(m.data)
            try:
                problems = node.check()
            finally:
                node.close()
            assert problems == [], f"{m.name}: " + "\n".join(problems)
        problems = self.disagreements()
        assert problems == [], "\n".join(problems)

    def disagreements(self) -> list[str]:
        problems: list[str] = []
        for issuer in self.members:
            for acquirer in self.members:
                if acquirer is not issuer:
                    problems += compare(
                        issuer.region,
                        issuer.data,
                        acquirer.region,
                        acquirer.data,
                    )
        return problems

    def wait_agree(self, timeout: float = 20.0) -> None:
        """Wait until nothing is in flight anywhere and every pair agrees."""

        def settled() -> bool:
            if any(in_flight(m.data) for m in self.members):
                return False
            return not self.disagreements()

        try:
            wait_until(
                settled, "every outbox to drain and every pair of cities to agree", timeout=timeout
            )
        except AssertionError:
            raise AssertionError(
                f"{self.disagreements()}\n--- merged logs ---\n{self.logs()[-6000:]}"
            ) from None
