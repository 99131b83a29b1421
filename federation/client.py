"""gRPC channels to peers: one per peer, kept open, with a per-call deadline.

Transport failures (unreachable, deadline exceeded, cancelled) raise ``PeerUnreachable``:
the caller retries later. A peer's refusal at the envelope door arrives as a gRPC error with
the stable code in the ``suanli-code`` trailing metadata and is raised as ``PeerRefused``.
"""

from __future__ import annotations

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
        stub = self._stub(region, endpoint)
        method = getattr(stub, METHODS[kind])
        try:
            reply = await method(pb.Envelope.FromString(envelope), timeout=timeout)
        except grpc.aio.AioRpcError as err:
            if err.code() in TRANSIENT:
                raise PeerUnreachable(f"{region}: {err.code().name} {err.details()}") from None
            code = dict(err.trailing_metadata() or ()).get("suanli-code", err.code().name.lower())
            raise PeerRefused(str(code), err.details() or "") from None
        data: bytes = reply.SerializeToString(deterministic=True)
        return data

    async def card(self, region: str, endpoint: str, timeout: float) -> bytes:
        reply = await self._stub(region, endpoint).GetCard(pb.CardQuery(), timeout=timeout)
        data: bytes = reply.SerializeToString(deterministic=True)
        return data

    async def close(self) -> None:
        for _, channel, _ in self._channels.values():
            await channel.close()
        self._channels.clear()
