"""The load generator: its own process, HTTP over loopback, N concurrent clients.

``python -m node.bench.load SPEC.json`` reads a work list (requests to make) and prints one JSON
line: count, errors, elapsed seconds, latency percentiles in ms, and this process's own CPU
seconds (so its cost on the shared machine is visible).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

import aiohttp


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    base, clients, kind = spec["base"], spec["clients"], spec["kind"]
    token = spec["token"]
    work: list[dict[str, Any]] = spec["work"]
    latencies: list[float] = []
    errors: dict[str, int] = {}
    queue = iter(work)
    headers = {"Authorization": f"Bearer {token}"}

    async def one(session: aiohttp.ClientSession, item: dict[str, Any]) -> None:
        started = time.perf_counter()
        if kind == "holdcapture":
            async with session.post(
                base + "/v1/holds", json=item["order"], headers=headers
            ) as resp:
                data = await resp.json()
                status = resp.status
            if status == 201:
                hold_id = data["hold"]["id"]
                async with session.post(
                    base + f"/v1/holds/{hold_id}/capture",
                    json={"amount_fen": item["capture"]},
                    headers=headers,
                ) as resp:
                    await resp.read()
                    status = resp.status
                    status = 201 if status == 200 else status
        else:
            path = {"redeem": "/v1/redemptions", "issue": "/v1/demands"}[kind]
            auth = {"Authorization": f"Bearer {item.get('token', token)}"}
            async with session.post(base + path, json=item["body"], headers=auth) as resp:
                await resp.read()
                status = resp.status
        if status == 201:
            latencies.append(time.perf_counter() - started)
        else:
            errors[str(status)] = errors.get(str(status), 0) + 1

    async def worker(session: aiohttp.ClientSession) -> None:
        for item in queue:
            await one(session, item)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "count": len(latencies),
        "errors": errors,
        "elapsed": elapsed,
        "rate": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    print(json.dumps(asyncio.run(run(spec))))


if __name__ == "__main__":
    main()
