"""gRPC channels to peers: one per peer, kept open, with a per-call deadline.

Transport failures (unreachable, deadline exceeded, cancelled) raise ``PeerUnreachable``:
the caller retries later. A peer's refusal at the envelope door arrives as a gRPC error with
the stable code in the ``suanli-code`` trailing metadata and is raised as ``PeerRefused``.

Redemption messages (AUTHORIZE, CAPTURE, VOID, REDEEM, STATUS) to the same peer that are sent
in the same turn of the event loop travel together in one ``Exchange`` call: under load, the
requests whose first transaction shared a commit leave together, so one gRPC call carries many
signed envelopes, each still answered (or refused at the door) on its own. A lone message
leaves at once, in a batch of one: batching adds no wait.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import grpc

from federation.proto.v1 import federation_pb2 as pb
from federation.proto.v1 import federation_pb2_grpc as pb_grpc

METHODS: dict[int, str] = {
    pb.AUTHORIZE: "Authorize",
    pb.CAPTURE: "Capture",
    pb.VOID: "Void",
    pb.REDEEM: "Redeem",
    pb.STATUS: "Status",
    pb.CARD: "PushCard",
    pb.STATEMENT: "Settle",
    pb.STATEMENTS: "Statements",
}
BATCHED = frozenset((pb.AUTHORIZE, pb.CAPTURE, pb.VOID, pb.REDEEM, pb.STATUS))
MAX_BATCH = 16  # envelopes per Exchange call; the server accepts up to 256
TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
}


class PeerUnreachable(Exception):
    pass


class PeerRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Tls:
    """Client side of TLS: trust ``ca``; present ``cert``/``key`` for mutual TLS."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes(),
            private_key=self.key.read_bytes() if self.key else None,
            certificate_chain=self.cert.read_bytes() if self.cert else None,
        )


class Clients:
    def __init__(self, tls: Tls | None) -> None:
        self._tls = tls
        self._channels: dict[str, tuple[str, grpc.aio.Channel, pb_grpc.FederationStub]] = {}
        # per peer: envelopes waiting for this turn's Exchange, with their callers' futures
        self._waiting: dict[str, list[tuple[bytes, asyncio.Future[bytes]]]] = {}
        self._sending: set[asyncio.Task[None]] = set()

    def _stub(self, region: str, endpoint: str) -> pb_grpc.FederationStub:
        known = self._channels.get(region)
        if known is not None and known[0] == endpoint:
            return known[2]
        options = [("grpc.keepalive_time_ms", 30_000), ("grpc.max_receive_message_length", 1 << 20)]
        if self._tls is None:
            channel = grpc.aio.insecure_channel(endpoint, options=options)
        else:
            channel = grpc.aio.secure_channel(endpoint, self._tls.credentials(), options=options)
        stub = pb_grpc.FederationStub(channel)  # type: ignore[no-untyped-call]
        self._channels[region] = (endpoint, channel, stub)
        return stub

    async def call(
        self, region: str, endpoint: str, kind: int, envelope: bytes, timeout: float
    ) -> bytes:
        """Send one signed envelope and return the peer's serialized reply envelope."""
        if kind in BATCHED:
            return await self._batched(region, endpoint, envelope, timeout)
        stub = self._stub(region, endpoint)
        method = getattr(stub, METHODS[kind])
        try:
            reply = await method(pb.Envelope.FromString(envelope), timeout=timeout)
        except grpc.aio.AioRpcError as err:
            raise _failure(region, err) from None
        data: bytes = reply.SerializeToString(deterministic=True)
        return data

    async def _batched(self, region: str, endpoint: str, envelope: bytes, timeout: float) -> bytes:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        waiting = self._waiting.setdefault(region, [])
        waiting.append((envelope, future))
        if len(waiting) == 1:  # the first this turn: send them all once the turn is over
            loop.call_soon(self._flush, region, endpoint, timeout)
        return await future

    def _flush(self, region: str, endpoint: str, timeout: float) -> None:
        waiting = self._waiting.pop(region, [])
        for start in range(0, len(waiting), MAX_BATCH):
            task = asyncio.get_running_loop().create_task(
                self._exchange(region, endpoint, waiting[start : start + MAX_BATCH], timeout)
            )
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _exchange(
        self,
        region: str,
        endpoint: str,
        items: list[tuple[bytes, asyncio.Future[bytes]]],
        timeout: float,
    ) -> None:
        """One Exchange call; each caller gets its own answer, or the call's failure."""
        batch = pb.Batch(envelopes=[envelope for envelope, _ in items])
        try:
            answers = (await self._stub(region, endpoint).Exchange(batch, timeout=timeout)).answers
            if len(answers) != len(items):
                raise PeerRefused(
                    "malformed_message", f"{len(answers)} answers to {len(items)} envelopes"
                )
        except (grpc.aio.AioRpcError, PeerRefused) as err:
            for _, future in items:
                if not future.done():
                    future.set_exception(
                        _failure(region, err) if isinstance(err, grpc.aio.AioRpcError) else err
                    )
            return
        except asyncio.CancelledError:  # closing: nobody waits for an answer that cannot come
            for _, future in items:
                if not future.done():
                    future.set_exception(PeerUnreachable(f"{region}: the channel was closed"))
            raise
        for (_, future), answer in zip(items, answers, strict=True):
            if future.done():
                continue
            if answer.code:
                future.set_exception(PeerRefused(answer.code, answer.message))
            else:
                future.set_result(answer.reply)

    async def card(self, region: str, endpoint: str, timeout: float) -> bytes:
        reply = await self._stub(region, endpoint).GetCard(pb.CardQuery(), timeout=timeout)
        data: bytes = reply.SerializeToString(deterministic=True)
        return data

    async def close(self) -> None:
        for task in list(self._sending):
            task.cancel()
        for _, channel, _ in self._channels.values():
            await channel.close()
        self._channels.clear()


def _failure(region: str, err: grpc.aio.AioRpcError) -> PeerUnreachable | PeerRefused:
    """A failed call: transient (retry later), or the peer's refusal with its stable code."""
    if err.code() in TRANSIENT:
        return PeerUnreachable(f"{region}: {err.code().name} {err.details()}")
    code = dict(err.trailing_metadata() or ()).get("suanli-code", err.code().name.lower())
    return PeerRefused(str(code), err.details() or "")
