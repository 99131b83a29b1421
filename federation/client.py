"""gRPC channels to peers: one per peer, kept open, with a per-call deadline.

Transport failures (unreachable, deadline exceeded, cancelled) raise ``PeerUnreachable``:
the caller retries later. A peer's refusal at the envelope door arrives as a gRPC error with
the stable code in the ``suanli-code`` trailing metadata and is raised as ``PeerRefused``.

Redemption messages (AUTHORIZE, CAPTURE, VOID, REDEEM, STATUS) to the same peer that are sent
in the same turn of the event loop travel together in one ``Batch``: under load, the requests
whose first transaction shared a commit leave together, so one message carries many signed
envelopes, each still answered (or refused at the door) on its own. A lone message leaves at
once, in a batch of one: batching adds no wait.

Batches travel on one long-lived ``Stream`` call per peer, opened on first use and again after
it breaks: a message on an open call costs about half the round trip of a new unary call
(measured on loopback: 0.33 against 0.67 ms, 0.68 against 1.40 ms when the processes were
idle before). Answers come back with their batch's id, in whatever order they are ready. A
peer that does not know ``Stream`` (UNIMPLEMENTED) is sent unary ``Exchange`` calls instead.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    pb.WINDOW_CLOSED: "Settle",
    pb.TRANSFER_ADVICE: "Settle",
    pb.RECEIPT_CONFIRMATION: "Settle",
    pb.STATEMENTS: "Statements",
    pb.OFFERS: "Offers",
    pb.OFFER_QUERY: "Offers",
    pb.ORDER_REQUEST: "Orders",
    pb.ORDER_ANSWER: "Orders",
}
BATCHED = frozenset((pb.AUTHORIZE, pb.CAPTURE, pb.VOID, pb.REDEEM, pb.STATUS))
MAX_BATCH = 16  # envelopes per Exchange call; the server accepts up to 256
KEEPALIVE_MS = 30_000
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


Item = tuple[bytes, "asyncio.Future[bytes]"]  # an envelope and its caller's future


class _Stream:
    """One open ``Stream`` call: batches written in turn, answers matched to them by id."""

    def __init__(
        self, region: str, call: Any, fallback: Callable[[list[Item], float], None]
    ) -> None:
        self.region = region
        self.call = call
        self.open = True
        self.unimplemented = False  # the peer does not know Stream: use Exchange
        self._fallback = fallback
        self._timeout = 2.0  # the last send's, for batches the fallback takes over
        self._next_id = 0
        self._pending: dict[int, list[Item]] = {}
        self._writing = asyncio.Lock()  # one write at a time on a call
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def send(self, items: list[Item], timeout: float) -> None:
        """Write one batch and wait (at most ``timeout``) for its answers to be handed out."""
        self._timeout = timeout
        if not self.open:
            if self.unimplemented:
                self._fallback(items, timeout)
            else:
                _fail(items, self._closed())
            return
        self._next_id += 1
        batch_id = self._next_id
        self._pending[batch_id] = items
        try:
            async with asyncio.timeout(timeout):
                async with self._writing:
                    await self.call.write(pb.Batch(id=batch_id, envelopes=[e for e, _ in items]))
                await asyncio.wait([future for _, future in items])
        except TimeoutError:
            _fail(items, PeerUnreachable(f"{self.region}: DEADLINE_EXCEEDED on the stream"))
        except asyncio.CancelledError:  # closing: nobody waits for an answer that cannot come
            _fail(items, self._closed())
            raise
        except Exception as exc:  # the write failed: the call has ended
            if self._pending.pop(batch_id, None) is None:
                return  # the reader has handed this batch on already
            rpc_error = exc if isinstance(exc, grpc.aio.AioRpcError) else None
            if rpc_error is not None and rpc_error.code() == grpc.StatusCode.UNIMPLEMENTED:
                self.unimplemented = True
            if self.unimplemented:
                self._fallback(items, timeout)
            elif rpc_error is not None:
                _fail(items, _failure(self.region, rpc_error))
            else:
                _fail(items, PeerUnreachable(f"{self.region}: the stream closed ({exc!r})"))
        finally:
            self._pending.pop(batch_id, None)

    def _closed(self) -> PeerUnreachable:
        return PeerUnreachable(f"{self.region}: the stream was closed")

    async def _read(self) -> None:
        failure: Exception = self._closed()
        try:
            while True:
                answers = await self.call.read()
                if answers is grpc.aio.EOF:
                    failure = PeerUnreachable(f"{self.region}: the peer ended the stream")
                    return
                items = self._pending.pop(answers.id, None)
                if items is not None:
                    _answer(items, answers.answers)
        except grpc.aio.AioRpcError as err:
            failure = _failure(self.region, err)
            if err.code() == grpc.StatusCode.UNIMPLEMENTED:  # an older peer: same batches, unary
                self.unimplemented = True
                pending, self._pending = self._pending, {}
                for items in pending.values():
                    self._fallback(items, self._timeout)
        finally:
            self.open = False
            for items in self._pending.values():
                _fail(items, failure)
            self._pending.clear()

    def cancel(self) -> None:
        self.open = False
        self._reader.cancel()
        self.call.cancel()


def _answer(items: list[Item], answers: Any) -> None:
    if len(answers) != len(items):
        _fail(items, PeerRefused("malformed_message", f"{len(answers)} answers to {len(items)}"))
        return
    for (_, future), answer in zip(items, answers, strict=True):
        if future.done():
            continue
        if answer.code:
            future.set_exception(PeerRefused(answer.code, answer.message))
        else:
            future.set_result(answer.reply)


def _fail(items: list[Item], exc: Exception) -> None:
    for _, future in items:
        if not future.done():
            future.set_exception(exc)


class Clients:
    def __init__(self, tls: Tls | None, *, own_connections: bool = False) -> None:
        """``own_connections``: these clients' channels do not share connections with any
        other channel of the process (gRPC pools them by target and options otherwise), so
        that their connection state and reconnect backoff are theirs alone."""
        self._tls = tls
        self._own = own_connections
        self._channels: dict[str, tuple[str, grpc.aio.Channel, pb_grpc.FederationStub]] = {}
        self._streams: dict[str, _Stream] = {}
        self._unary_only: set[str] = set()  # peers that answered Stream with UNIMPLEMENTED
        # per peer: envelopes waiting for this turn's batch, with their callers' futures
        self._waiting: dict[str, list[Item]] = {}
        self._sending: set[asyncio.Task[None]] = set()
        # per peer: the endpoint that answered last, where the next call starts
        self._preferred: dict[str, str] = {}

    def _stub(self, region: str, endpoint: str) -> pb_grpc.FederationStub:
        known = self._channels.get(region)
        if known is not None and known[0] == endpoint:
            return known[2]
        options = [
            # A Stream may sit idle for long: keep pinging it (every 30 s, no cap on pings
            # without data) so a peer that vanished is noticed within ~40 s, not at the next
            # message. The server accepts pings this often (federation/server.py).
            ("grpc.keepalive_time_ms", KEEPALIVE_MS),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.max_receive_message_length", 1 << 20),
        ]
        if self._own:
            options.append(("grpc.use_local_subchannel_pool", 1))
        if self._tls is None:
            channel = grpc.aio.insecure_channel(endpoint, options=options)
        else:
            channel = grpc.aio.secure_channel(endpoint, self._tls.credentials(), options=options)
        stub = pb_grpc.FederationStub(channel)  # type: ignore[no-untyped-call]
        old = self._streams.pop(region, None)
        if old is not None:  # the peer moved: its stream was on the old channel
            old.cancel()
        self._channels[region] = (endpoint, channel, stub)
        return stub

    def _stream(self, region: str, endpoint: str) -> _Stream | None:
        """The open stream to ``region``, opened if need be; None for a unary-only peer."""
        stream = self._streams.get(region)
        if stream is not None and stream.unimplemented:
            self._unary_only.add(region)
        if region in self._unary_only:
            return None
        stub = self._stub(region, endpoint)
        stream = self._streams.get(region)
        if stream is None or not stream.open:
            fallback = functools.partial(self._spawn_exchange, region, endpoint)
            stream = _Stream(region, stub.Stream(), fallback)
            self._streams[region] = stream
        return stream

    def _spawn_exchange(
        self, region: str, endpoint: str, items: list[Item], timeout: float
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._exchange(region, endpoint, items, timeout)
        )
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def call(
        self, region: str, endpoints: Sequence[str], kind: int, envelope: bytes, timeout: float
    ) -> bytes:
        """Send one signed envelope and return the peer's serialized reply envelope.

        A city may list several endpoints (an active/standby pair, docs/protocol.md §6). The
        call goes to the one that answered last (at first, the card's first); when that one is
        unreachable, to the next, each at most once per call, and the next call starts where
        this one succeeded. Resending the same envelope to another endpoint of the same city
        is harmless: its inbox answers a message id it has seen with the stored reply."""
        if isinstance(endpoints, str):
            raise TypeError("endpoints: a sequence of host:port strings")
        failure: PeerUnreachable | None = None
        for _ in range(len(endpoints)):
            endpoint = self._preferred.get(region, endpoints[0])
            if endpoint not in endpoints:
                endpoint = endpoints[0]
            try:
                answer = await self._call_one(region, endpoint, kind, envelope, timeout)
            except PeerUnreachable as exc:
                failure = exc
                # The next endpoint, unless another caller has already moved on from this one.
                if self._preferred.get(region, endpoints[0]) in (endpoint, None):
                    following = endpoints[(list(endpoints).index(endpoint) + 1) % len(endpoints)]
                    self._preferred[region] = following
                continue
            self._preferred[region] = endpoint
            return answer
        assert failure is not None
        raise failure

    async def _call_one(
        self, region: str, endpoint: str, kind: int, envelope: bytes, timeout: float
    ) -> bytes:
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
        stream = self._stream(region, endpoint)
        for start in range(0, len(waiting), MAX_BATCH):
            items = waiting[start : start + MAX_BATCH]
            if stream is None:
                self._spawn_exchange(region, endpoint, items, timeout)
                continue
            task = asyncio.get_running_loop().create_task(stream.send(items, timeout))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _exchange(
        self, region: str, endpoint: str, items: list[Item], timeout: float
    ) -> None:
        """One unary Exchange call; each caller gets its own answer, or the call's failure."""
        batch = pb.Batch(envelopes=[envelope for envelope, _ in items])
        try:
            reply = await self._stub(region, endpoint).Exchange(batch, timeout=timeout)
        except grpc.aio.AioRpcError as err:
            _fail(items, _failure(region, err))
            return
        except asyncio.CancelledError:  # closing: nobody waits for an answer that cannot come
            _fail(items, PeerUnreachable(f"{region}: the channel was closed"))
            raise
        _answer(items, reply.answers)

    async def card(self, region: str, endpoint: str, timeout: float) -> bytes:
        reply = await self._stub(region, endpoint).GetCard(pb.CardQuery(), timeout=timeout)
        data: bytes = reply.SerializeToString(deterministic=True)
        return data

    async def close(self) -> None:
        for stream in self._streams.values():
            stream.cancel()
        self._streams.clear()
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
