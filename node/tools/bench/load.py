"""The load generator: its own process, HTTP over loopback, N concurrent clients.

``python -m node.tools.bench.load SPEC.json`` reads a work list (requests to make) and prints one JSON
line: count, errors, elapsed seconds, latency percentiles in ms, and this process's own CPU
seconds (so its cost on the shared machine is visible).

Each client is one keep-alive HTTP/1.1 connection written to and read from with asyncio
streams: a request is bytes encoded before the clock starts (except a capture, which needs
the hold id its hold returned), and a response is read by its Content-Length
(the node always sends one). A general HTTP client (aiohttp's) cost about four times the CPU
per request, taken from the same two cores the nodes run on.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any
from urllib.parse import urlsplit


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class Client:
    """One keep-alive connection to the node."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def request(self, path: str, token: str, body: Any) -> bytes:
        """A POST with a JSON body, as bytes on the wire."""
        payload = json.dumps(body).encode()
        return (
            f"POST {path} HTTP/1.1\r\nHost: {self._host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )

    async def post(self, path: str, token: str, body: Any) -> tuple[int, bytes]:
        return await self.send(self.request(path, token, body))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
                break
        data = await self._reader.readexactly(length)
        if b"connection: close" in head.lower():
            self._writer.close()
            self._writer = None
        return status, data

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    base, clients, kind = spec["base"], spec["clients"], spec["kind"]
    token = spec["token"]
    work: list[dict[str, Any]] = spec["work"]
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    latencies: list[float] = []
    errors: dict[str, int] = {}
    if kind != "holdcapture":  # encoded before the clock starts: the load generator's own
        path = {"redeem": "/v1/redemptions", "issue": "/v1/demands"}[kind]  # work is not timed
        encoder = Client(host, port)
        for item in work:
            item["raw"] = encoder.request(path, item.get("token", token), item["body"])
    queue = iter(work)

    async def one(client: Client, item: dict[str, Any]) -> None:
        started = time.perf_counter()
        if kind == "holdcapture":
            status, data = await client.post("/v1/holds", token, item["order"])
            if status == 201:
                hold_id = json.loads(data)["hold"]["id"]
                status, _ = await client.post(
                    f"/v1/holds/{hold_id}/capture", token, {"amount_fen": item["capture"]}
                )
                status = 201 if status == 200 else status
        else:
            status, _ = await client.send(item["raw"])
        if status == 201:
            latencies.append(time.perf_counter() - started)
        else:
            errors[str(status)] = errors.get(str(status), 0) + 1

    async def worker() -> None:
        client = Client(host, port)
        try:
            for item in queue:
                await one(client, item)
        finally:
            client.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
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
