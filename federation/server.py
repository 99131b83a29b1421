"""The gRPC servicer: verify the envelope at the door, hand it to the issuer, map errors once.

It runs in the node's process and event loop, beside the REST API (grpc.aio). Nothing here
decides anything: the door checks the envelope, ``Issuer.handle`` applies the request, and
``GRPC_STATUS`` maps every envelope refusal to a gRPC status with the stable code in the
``suanli-code`` trailing metadata. Business refusals are not gRPC errors: they are signed
REFUSAL replies, the issuer's evidence as much as a receipt is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from federation.announce import CardReceiver
from federation.envelope import Door
from federation.issuer import Issuer
from federation.proto.v1 import federation_pb2 as pb
from federation.proto.v1 import federation_pb2_grpc as pb_grpc
from federation.settlement import StatementDesk
from node import errors
from node.clock import Clock

logger = logging.getLogger(__name__)

GRPC_STATUS: dict[type[errors.SuanliError], grpc.StatusCode] = {
    errors.UnknownOrigin: grpc.StatusCode.UNAUTHENTICATED,
    errors.UnknownKey: grpc.StatusCode.UNAUTHENTICATED,
    errors.KeyExpired: grpc.StatusCode.UNAUTHENTICATED,
    errors.KeyRevoked: grpc.StatusCode.UNAUTHENTICATED,
    errors.BadSignature: grpc.StatusCode.UNAUTHENTICATED,
    errors.OriginMismatch: grpc.StatusCode.UNAUTHENTICATED,
    errors.WrongDestination: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ClockSkew: grpc.StatusCode.OUT_OF_RANGE,
    errors.MalformedMessage: grpc.StatusCode.INVALID_ARGUMENT,
    errors.WrongMessageType: grpc.StatusCode.INVALID_ARGUMENT,
    errors.ModifiedReplay: grpc.StatusCode.ALREADY_EXISTS,
}

RefusalObserver = Callable[[str, str], None]  # signer region (as claimed), code

# What a Batch may carry, and how many at most.
BATCHED = (pb.AUTHORIZE, pb.CAPTURE, pb.VOID, pb.REDEEM, pb.STATUS)
MAX_BATCH = 256
# Batches of one Stream being answered at once; the next is read when one is answered, so a
# peer that sends faster than this node answers is held back by gRPC's flow control.
STREAM_IN_FLIGHT = 64
MIN_PING_INTERVAL_MS = 20_000  # below the senders' keepalive (federation/client.py)
_TOO_MANY = f"malformed_message: at most {MAX_BATCH} envelopes in a batch"


def _signer(raw: bytes) -> str:
    """The region an envelope claims, for the refusal log only (it may not even parse)."""
    try:
        return pb.Envelope.FromString(raw).signer_region
    except DecodeError:
        return ""


class Servicer(pb_grpc.FederationServicer):
    def __init__(
        self,
        door: Door,
        issuer: Issuer,
        cards: CardReceiver,
        desk: StatementDesk,
        clock: Clock,
        card: Callable[[], bytes],
        observer: RefusalObserver | None = None,
    ) -> None:
        self._door = door
        self._issuer = issuer
        self._cards = cards
        self._desk = desk
        self._clock = clock
        self._card = card
        self._observer = observer
        self._streaming: set[asyncio.Task[None]] = set()

    async def _handle(self, request: pb.Envelope | bytes, kinds: tuple[int, ...]) -> bytes:
        """Open one envelope at the door and answer it; envelope refusals are raised."""
        opened = self._door.open(request, kinds, self._clock.now_ms())
        kind = opened.header.type
        if kind == pb.CARD:
            return await self._cards.receive(opened)
        if kind == pb.STATEMENT:
            return await self._desk.handle(opened)
        if kind == pb.STATEMENTS:
            return await self._desk.statements(opened)
        return await self._issuer.handle(opened)

    def _refused(self, signer_region: str, kinds: tuple[int, ...], exc: errors.SuanliError) -> None:
        if self._observer is not None:
            self._observer(signer_region[:6] or "none", exc.code)
        logger.warning(
            "refused %s from %r: %s %s",
            "/".join(pb.MessageType.Name(k) for k in kinds),
            signer_region[:6],
            exc.code,
            exc.message,
        )

    async def _serve(
        self,
        request: pb.Envelope,
        context: grpc.aio.ServicerContext[pb.Envelope, pb.Envelope],
        kind: int,
    ) -> pb.Envelope:
        try:
            reply = await self._handle(request, (kind,))
        except errors.SuanliError as exc:
            self._refused(request.signer_region, (kind,), exc)
            context.set_trailing_metadata((("suanli-code", exc.code),))
            await context.abort(
                GRPC_STATUS.get(type(exc), grpc.StatusCode.INTERNAL), f"{exc.code}: {exc.message}"
            )
        except Exception:
            logger.exception("federation request failed")
            context.set_trailing_metadata((("suanli-code", "internal"),))
            await context.abort(grpc.StatusCode.INTERNAL, "internal: see the issuer's log")
        return pb.Envelope.FromString(reply)

    async def _answer(self, raw: bytes) -> pb.Answer:
        """One envelope of a batch, answered exactly as its own method would answer it."""
        try:
            return pb.Answer(reply=await self._handle(raw, BATCHED))
        except errors.SuanliError as exc:
            self._refused(_signer(raw), BATCHED, exc)
            return pb.Answer(code=exc.code, message=f"{exc.code}: {exc.message}")
        except Exception:
            logger.exception("federation request failed")
            return pb.Answer(code="internal", message="internal: see the issuer's log")

    async def _answers(self, batch: pb.Batch) -> pb.Answers:
        if len(batch.envelopes) == 1:  # no load: no tasks to gather
            return pb.Answers(id=batch.id, answers=[await self._answer(batch.envelopes[0])])
        # Answered together, the batch's transactions share the database's group commit.
        answers = await asyncio.gather(*(self._answer(raw) for raw in batch.envelopes))
        return pb.Answers(id=batch.id, answers=answers)

    async def Exchange(
        self, request: pb.Batch, context: grpc.aio.ServicerContext[pb.Batch, pb.Answers]
    ) -> pb.Answers:
        if len(request.envelopes) > MAX_BATCH:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _TOO_MANY)
        return await self._answers(request)

    async def Stream(
        self,
        request_iterator: AsyncIterator[pb.Batch],
        context: grpc.aio.ServicerContext[pb.Batch, pb.Answers],
    ) -> None:
        """Answer each Batch as soon as it is ready, several at once (they share group
        commits). A Batch over the limit ends the call, as it would refuse an Exchange; batches
        already read are still answered if the call lives, and applied either way (the sender
        retries them and the inbox answers with the stored replies)."""
        room = asyncio.Semaphore(STREAM_IN_FLIGHT)
        writing = asyncio.Lock()  # one write at a time on a call
        answering: set[asyncio.Task[None]] = set()

        async def answer(batch: pb.Batch) -> None:
            try:
                answers = await self._answers(batch)
                async with writing:
                    await context.write(answers)
            except Exception as exc:  # the call ended first: the sender retries, the inbox answers
                logger.debug("stream answer %d not delivered: %r", batch.id, exc)
            finally:
                room.release()

        while True:
            await room.acquire()
            batch = await context.read()
            if not isinstance(batch, pb.Batch):  # grpc.aio.EOF: the sender is done
                break
            if len(batch.envelopes) > MAX_BATCH:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _TOO_MANY)
            task = asyncio.get_running_loop().create_task(answer(batch))
            answering.add(task)
            task.add_done_callback(answering.discard)
            self._streaming.add(task)  # kept alive if this call is cancelled
            task.add_done_callback(self._streaming.discard)
        if answering:  # the sender has finished writing: answer what it sent before the end
            await asyncio.wait(answering)

    async def Authorize(
        self, request: pb.Envelope, context: grpc.aio.ServicerContext[pb.Envelope, pb.Envelope]
    ) -> pb.Envelope:
        return await self._serve(request, context, pb.AUTHORIZE)

    async def Capture(
        self, request: pb.Envelope, context: grpc.aio.ServicerContext[pb.Envelope, pb.Envelope]
    ) -> pb.Envelope:
        return await self._serve(request, context, pb.CAPTURE)

    async def Void(
        self, request: pb.Envelope, context: grpc.aio.ServicerContext[pb.Envelope, pb.Envelope]
    ) -> pb.Envelope:
        return await self._serve(request, context, pb.VOID)

    async def Redeem(
        self, request: pb.Envelope, context: grpc.aio.ServicerContext[pb.Envelope, pb.Envelope]
    ) -> pb.Envelope:
        return await self._serve(request, context, pb.REDEEM)

    async def Status(
        self, request: pb.Envelope, context: grpc.aio.ServicerContext[pb.Envelope, pb.Envelope]
    ) -> pb.Envelope:
        return await self._serve(request, context, pb.STATUS)

    async def PushCard(
        self, request: pb.Envelope, context: grpc.aio.ServicerContext[pb.Envelope, pb.Envelope]
    ) -> pb.Envelope:
        return await self._serve(request, context, pb.CARD)

    async def Settle(
        self, request: pb.Envelope, context: grpc.aio.ServicerContext[pb.Envelope, pb.Envelope]
    ) -> pb.Envelope:
        return await self._serve(request, context, pb.STATEMENT)

    async def Statements(
        self, request: pb.Envelope, context: grpc.aio.ServicerContext[pb.Envelope, pb.Envelope]
    ) -> pb.Envelope:
        return await self._serve(request, context, pb.STATEMENTS)

    async def GetCard(
        self, request: pb.CardQuery, context: grpc.aio.ServicerContext[pb.CardQuery, pb.Envelope]
    ) -> pb.Envelope:
        return pb.Envelope.FromString(self._card())


@dataclass(frozen=True)
class ServerTls:
    cert: Path
    key: Path
    client_ca: Path | None  # set: mutual TLS, clients must present a certificate it signed

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())],
            root_certificates=self.client_ca.read_bytes() if self.client_ca else None,
            require_client_auth=self.client_ca is not None,
        )


FEDERATION_SERVICE = "suanli.federation.v1.Federation"


async def start_server(
    servicer: Servicer, host: str, port: int, tls: ServerTls | None
) -> tuple[grpc.aio.Server, int]:
    """Serve the federation and the standard health service (``grpc.health.v1.Health``):
    SERVING for "" and for the federation service while the node runs."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 1 << 20),
            # Peers keep a Stream open and ping it every 30 s even when no message flows; by
            # default a server takes pings less than 5 minutes apart without data as abuse
            # and closes the connection (GOAWAY too_many_pings) after a few.
            ("grpc.http2.min_ping_interval_without_data_ms", MIN_PING_INTERVAL_MS),
        ]
    )
    pb_grpc.add_FederationServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    health_servicer = health.aio.HealthServicer()
    for name in ("", FEDERATION_SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    address = f"{host}:{port}"
    bound = (
        server.add_insecure_port(address)
        if tls is None
        else server.add_secure_port(address, tls.credentials())
    )
    await server.start()
    return server, bound
