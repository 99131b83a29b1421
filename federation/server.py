"""The gRPC servicer: verify the envelope at the door, hand it to the issuer, map errors once.

It runs in the node's process and event loop, beside the REST API (grpc.aio). Nothing here
decides anything: the door checks the envelope, ``convert`` turns it into the service's values,
``IssuerDesk.handle`` (node/services/issuer.py) applies the request, and
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
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2

from federation import convert
from federation.announce import CardReceiver
from federation.envelope import Door, Opened
from federation.offers import OfferDesk
from federation.proto.v1 import federation_pb2 as pb
from node import errors
from node.clock import Clock
from node.faults import crash_point
from node.logs import REQUEST_ID
from node.services.clearing import Clearing
from node.services.issuer import IssuerDesk
from node.services.orders import Orders
from node.services.statements import StatementDesk

logger = logging.getLogger(__name__)

GRPC_STATUS: dict[type[errors.SuanliError], grpc.StatusCode] = {
    errors.UnknownSigner: grpc.StatusCode.UNAUTHENTICATED,
    errors.KeyExpired: grpc.StatusCode.UNAUTHENTICATED,
    errors.KeyRevoked: grpc.StatusCode.UNAUTHENTICATED,
    errors.BadSignature: grpc.StatusCode.UNAUTHENTICATED,
    errors.OriginMismatch: grpc.StatusCode.UNAUTHENTICATED,
    errors.WrongDestination: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ClockSkew: grpc.StatusCode.OUT_OF_RANGE,
    errors.MalformedMessage: grpc.StatusCode.INVALID_ARGUMENT,
    errors.MessageTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.WrongMessageType: grpc.StatusCode.INVALID_ARGUMENT,
    errors.ModifiedReplay: grpc.StatusCode.ALREADY_EXISTS,
    errors.OfferInvalid: grpc.StatusCode.INVALID_ARGUMENT,
    # A node that lost its database lease (node/store/pg.py): peers go on to the next endpoint.
    errors.NotActive: grpc.StatusCode.UNAVAILABLE,
}

RefusalObserver = Callable[[str, str], None]  # signer region (as claimed), code

# What the Settle method carries.
SETTLE = (pb.STATEMENT, pb.WINDOW_CLOSED, pb.TRANSFER_ADVICE, pb.RECEIPT_CONFIRMATION)
# What a Batch may carry, and how many at most.
BATCHED = (pb.AUTHORIZE, pb.CAPTURE, pb.VOID, pb.REDEEM, pb.STATUS)
# What the Orders method carries (docs/protocol.md §5e).
ORDERS = (pb.ORDER_REQUEST, pb.ORDER_ANSWER)
# What the Offers method carries (docs/protocol.md §5d).
OFFERS = (pb.OFFERS, pb.OFFER_QUERY)
MAX_BATCH = 256
# Batches of one Stream being answered at once; the next is read when one is answered, so a
# peer that sends faster than this node answers is held back by gRPC's flow control.
STREAM_IN_FLIGHT = 64
# The protocol's limit on one request (docs/protocol.md §2): larger ones are refused with
# message_too_large. gRPC itself stops reading at TRANSPORT_LIMIT, so that no caller can make
# the node buffer more; between the two the refusal carries its suanli-code.
MAX_MESSAGE_BYTES = 1 << 20
TRANSPORT_LIMIT = 16 << 20
MIN_PING_INTERVAL_MS = 20_000  # below the senders' keepalive (federation/client.py)


def _signer(raw: bytes) -> str:
    """The region an envelope claims, for the refusal log only (it may not even parse)."""
    try:
        return pb.Envelope.FromString(raw).signer_region
    except DecodeError:
        return ""


def _sized(raw: bytes) -> bytes:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise errors.MessageTooLarge(
            f"{len(raw)} bytes; a federation request is at most {MAX_MESSAGE_BYTES} bytes"
        )
    return raw


def _batch(raw: bytes) -> pb.Batch:
    """A Batch container, parsed here rather than by gRPC so that bytes that are not one get
    the documented refusal (``malformed_message``), never gRPC's UNKNOWN with a parser's text."""
    _sized(raw)
    try:
        batch = pb.Batch.FromString(raw)
    except DecodeError:
        raise errors.MalformedMessage("the request is not a valid Batch message") from None
    if len(batch.envelopes) > MAX_BATCH:
        raise errors.MalformedMessage(f"at most {MAX_BATCH} envelopes in a batch")
    return batch


async def _abort(
    context: grpc.aio.ServicerContext[bytes, bytes], exc: errors.SuanliError
) -> NoReturn:
    context.set_trailing_metadata((("suanli-code", exc.code),))
    await context.abort(
        GRPC_STATUS.get(type(exc), grpc.StatusCode.INTERNAL), f"{exc.code}: {exc.message}"
    )
    raise AssertionError("unreachable: abort raises")


class Servicer:
    """The federation's methods, on raw bytes: gRPC hands every request over unparsed (see
    ``handlers``), so that whatever arrives goes through the door and every refusal carries
    its documented status and ``suanli-code``."""

    def __init__(
        self,
        door: Door,
        issuer: IssuerDesk,
        cards: CardReceiver,
        desk: StatementDesk,
        clearing: Clearing,
        sealer: convert.Sealer,
        clock: Clock,
        card: Callable[[], bytes],
        offers: OfferDesk,
        orders: Orders,
        observer: RefusalObserver | None = None,
    ) -> None:
        self._door = door
        self._issuer = issuer
        self._cards = cards
        self._desk = desk
        self._clearing = clearing
        self._sealer = sealer
        self._clock = clock
        self._card = card
        self._offers = offers
        self._orders = orders
        self._observer = observer
        self._streaming: set[asyncio.Task[None]] = set()

    async def _handle(self, request: bytes, kinds: tuple[int, ...]) -> bytes:
        """Open one envelope at the door and answer it; envelope refusals are raised."""
        opened = self._door.open(_sized(request), kinds, self._clock.now_ms())
        # The sender's request id (unsigned, checked for shape) on every line this causes.
        token = REQUEST_ID.set(opened.trace or "-")
        try:
            return await self._open_handled(opened)
        finally:
            REQUEST_ID.reset(token)

    async def _open_handled(self, opened: Opened) -> bytes:
        kind, header = opened.header.type, opened.header
        if kind == pb.CARD:
            reply = await self._cards.receive(opened)
            self._accepted(opened, "card kept")
            return reply
        if kind == pb.STATEMENT:
            origin = header.origin
            answer = await self._desk.compare(
                origin, convert.statement_claim(opened.payload), opened.raw
            )
            crash_point("issuer.after_statement")
            self._accepted(opened, "agreed" if answer.agreed else f"not agreed: {answer.code}")
            return self._reply(opened, pb.STATEMENT_REPLY, convert.statement_reply(answer))
        if kind == pb.WINDOW_CLOSED:
            window_id = convert.window_closed(opened.payload)
            await self._desk.window_closed(header.origin, window_id)
            self._accepted(opened, f"window {window_id} closed: statement due")
            ack = pb.Ack(request_message_id=header.message_id).SerializeToString()
            return self._reply(opened, pb.ACK, ack)
        if kind in convert.ORDERS:
            return await self._orders.receive(convert.inbound(opened))  # it logs its line
        if kind in convert.CLEARING:
            return await self._clearing.receive(convert.inbound(opened))  # it logs its line
        if kind in OFFERS:
            take = self._offers.offers if kind == pb.OFFERS else self._offers.query
            payload, outcome = await take(opened)
            self._accepted(opened, outcome)
            return self._reply(opened, pb.OFFERS_REPLY, payload)
        if kind == pb.STATEMENTS:
            page = await self._desk.agreed(*convert.statements_query(opened.payload))
            self._accepted(opened, f"{len(page[0])} statements")
            return self._reply(opened, pb.STATEMENTS_REPLY, convert.statements_reply(*page))
        return await self._issuer.handle(convert.peer_request(opened))  # it logs its own line

    @staticmethod
    def _accepted(opened: Opened, outcome: str) -> None:
        header = opened.header
        logger.info(
            "accepted %s %s from %s: %s",
            pb.MessageType.Name(header.type),
            header.message_id,
            header.origin,
            outcome,
        )

    def _reply(self, opened: Opened, kind: int, payload: bytes) -> bytes:
        header = opened.header
        return self._sealer.reply(
            header.origin, header.message_id, kind, payload, self._clock.now_ms()
        )

    def _refused(self, signer_region: str, kinds: tuple[int, ...], exc: errors.SuanliError) -> None:
        if self._observer is not None:  # it labels by peer only regions that are peers
            self._observer(signer_region, exc.reason)
        logger.warning(
            "refused %s claiming %r: %s (%s)",
            "/".join(pb.MessageType.Name(k) for k in kinds),
            signer_region[:8],
            exc.code,
            exc.for_log(),
        )

    async def _serve(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes], kind: int
    ) -> bytes:
        return await self._serve_any(request, context, (kind,))

    async def _serve_any(
        self,
        request: bytes,
        context: grpc.aio.ServicerContext[bytes, bytes],
        kinds: tuple[int, ...],
    ) -> bytes:
        try:
            return await self._handle(request, kinds)
        except errors.SuanliError as exc:
            self._refused(_signer(request), kinds, exc)
            await _abort(context, exc)
        except Exception:
            logger.exception("federation request failed")
            await _abort(context, errors.SuanliError("see the issuer's log"))

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
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        try:
            batch = _batch(request)
        except errors.SuanliError as exc:
            self._refused("", BATCHED, exc)
            await _abort(context, exc)
        answers = await self._answers(batch)
        return answers.SerializeToString(deterministic=True)

    async def Stream(
        self,
        request_iterator: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext[bytes, bytes],
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
                    await context.write(answers.SerializeToString(deterministic=True))
            except Exception as exc:  # the call ended first: the sender retries, the inbox answers
                logger.debug("stream answer %d not delivered: %r", batch.id, exc)
            finally:
                room.release()

        while True:
            await room.acquire()
            raw = await context.read()
            if not isinstance(raw, bytes):  # grpc.aio.EOF: the sender is done
                break
            try:
                batch = _batch(raw)
            except errors.SuanliError as exc:
                self._refused("", BATCHED, exc)
                await _abort(context, exc)
            task = asyncio.get_running_loop().create_task(answer(batch))
            answering.add(task)
            task.add_done_callback(answering.discard)
            self._streaming.add(task)  # kept alive if this call is cancelled
            task.add_done_callback(self._streaming.discard)
        if answering:  # the sender has finished writing: answer what it sent before the end
            await asyncio.wait(answering)

    async def Authorize(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        return await self._serve(request, context, pb.AUTHORIZE)

    async def Capture(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        return await self._serve(request, context, pb.CAPTURE)

    async def Void(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return await self._serve(request, context, pb.VOID)

    async def Redeem(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        return await self._serve(request, context, pb.REDEEM)

    async def Status(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        return await self._serve(request, context, pb.STATUS)

    async def PushCard(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        return await self._serve(request, context, pb.CARD)

    async def Settle(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        return await self._serve_any(request, context, SETTLE)

    async def Statements(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        return await self._serve(request, context, pb.STATEMENTS)

    async def Offers(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        return await self._serve_any(request, context, OFFERS)

    async def Orders(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        return await self._serve_any(request, context, ORDERS)

    async def GetCard(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        try:
            pb.CardQuery.FromString(_sized(request))
        except errors.SuanliError as exc:
            await _abort(context, exc)
        except DecodeError:
            await _abort(context, errors.MalformedMessage("the request is not a CardQuery"))
        return self._card()


# Each method and how it is called; requests and replies cross gRPC as bytes (no
# deserializer, no serializer): the servicer parses, after the door where there is one.
METHODS: dict[str, str] = {
    "Exchange": "unary",
    "Stream": "stream",
    "Authorize": "unary",
    "Capture": "unary",
    "Void": "unary",
    "Redeem": "unary",
    "Status": "unary",
    "PushCard": "unary",
    "Settle": "unary",
    "Statements": "unary",
    "Offers": "unary",
    "Orders": "unary",
    "GetCard": "unary",
}


def _ending_cleanly(name: str, method: Any) -> Any:
    """``method``, but a call cancelled under it (the node stopping with a stream open, or
    the caller gone) ends with UNAVAILABLE and one log line. Left to gRPC, the cancellation
    was logged and then printed again as a raw traceback on stderr, outside the log format."""

    async def call(request: Any, context: grpc.aio.ServicerContext[bytes, bytes]) -> Any:
        try:
            return await method(request, context)
        except asyncio.CancelledError:
            logger.info("%s call cancelled: the node is stopping or the caller left", name)
            context.set_trailing_metadata((("suanli-code", "unavailable"),))
            await context.abort(grpc.StatusCode.UNAVAILABLE, "unavailable: the node is stopping")

    return call


def handlers(servicer: Servicer) -> dict[str, grpc.RpcMethodHandler[bytes, bytes]]:
    """The service's method table, as the generated ``add_FederationServicer_to_server`` builds
    it but without its protobuf (de)serializers: a request that does not parse would otherwise
    fail inside gRPC, as UNKNOWN with the parser's text, before the door could refuse it."""
    table: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {}
    for name, kind in METHODS.items():
        method = _ending_cleanly(name, getattr(servicer, name))
        table[name] = (
            grpc.stream_stream_rpc_method_handler(method)
            if kind == "stream"
            else grpc.unary_unary_rpc_method_handler(method)
        )
    return table


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
HEALTH_SERVICE = "grpc.health.v1.Health"


def _health_handlers(
    servicer: health.aio.HealthServicer,
) -> dict[str, grpc.RpcMethodHandler[bytes, bytes]]:
    """The standard health service, its requests parsed here as the federation's are: bytes
    that are not a HealthCheckRequest get INVALID_ARGUMENT with ``malformed_message``, not
    gRPC's UNKNOWN with the parser's text. Answers are the library's own."""

    def parsed(raw: bytes) -> health_pb2.HealthCheckRequest:
        try:
            return health_pb2.HealthCheckRequest.FromString(_sized(raw))
        except DecodeError:
            raise errors.MalformedMessage("the request is not a HealthCheckRequest") from None

    async def check(raw: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> Any:
        try:
            request = parsed(raw)
        except errors.SuanliError as exc:
            await _abort(context, exc)
        return await servicer.Check(request, context)

    async def watch(raw: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
        try:
            request = parsed(raw)
        except errors.SuanliError as exc:
            await _abort(context, exc)
        await servicer.Watch(request, context)

    answer = health_pb2.HealthCheckResponse.SerializeToString
    return {
        "Check": grpc.unary_unary_rpc_method_handler(check, response_serializer=answer),
        "Watch": grpc.unary_stream_rpc_method_handler(watch, response_serializer=answer),
    }


def _grpc_server() -> grpc.aio.Server:
    return grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", TRANSPORT_LIMIT),
            # Peers keep a Stream open and ping it every 30 s even when no message flows; by
            # default a server takes pings less than 5 minutes apart without data as abuse
            # and closes the connection (GOAWAY too_many_pings) after a few.
            ("grpc.http2.min_ping_interval_without_data_ms", MIN_PING_INTERVAL_MS),
        ]
    )


async def _listen(
    server: grpc.aio.Server, host: str, port: int, tls: ServerTls | None
) -> tuple[grpc.aio.Server, int]:
    address = f"{host}:{port}"
    bound = (
        server.add_insecure_port(address)
        if tls is None
        else server.add_secure_port(address, tls.credentials())
    )
    await server.start()
    return server, bound


async def _health(server: grpc.aio.Server, status: Any) -> None:
    health_servicer = health.aio.HealthServicer()
    for name in ("", FEDERATION_SERVICE):
        await health_servicer.set(name, status)
    health_table = _health_handlers(health_servicer)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(HEALTH_SERVICE, health_table),)
    )
    server.add_registered_method_handlers(HEALTH_SERVICE, health_table)


async def start_server(
    servicer: Servicer, host: str, port: int, tls: ServerTls | None
) -> tuple[grpc.aio.Server, int]:
    """Serve the federation and the standard health service (``grpc.health.v1.Health``):
    SERVING for "" and for the federation service while the node runs."""
    server = _grpc_server()
    table = handlers(servicer)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(FEDERATION_SERVICE, table),)
    )
    server.add_registered_method_handlers(FEDERATION_SERVICE, table)
    await _health(server, health_pb2.HealthCheckResponse.SERVING)
    return await _listen(server, host, port, tls)


async def start_standby_server(
    host: str, port: int, tls: ServerTls | None, active: Callable[[], str]
) -> tuple[grpc.aio.Server, int]:
    """The federation port of a standby (node/standby.py): every call refused as UNAVAILABLE
    with the code ``not_active`` and where the active node serves (``active()``), so that a
    caller tries the city's next endpoint (docs/protocol.md §6); the health service says
    NOT_SERVING. Nothing is read, verified or written."""

    async def refuse(context: Any) -> None:
        await context.abort(
            grpc.StatusCode.UNAVAILABLE,
            f"not_active: this node is the standby; the active one serves at {active()}",
            trailing_metadata=(("suanli-code", "not_active"),),
        )

    async def unary(raw: bytes, context: Any) -> bytes:
        await refuse(context)
        return b""  # not reached: abort raises

    async def stream(requests: Any, context: Any) -> AsyncIterator[bytes]:
        await refuse(context)
        yield b""  # not reached: abort raises

    server = _grpc_server()
    table: dict[str, Any] = {
        name: grpc.stream_stream_rpc_method_handler(stream)
        if kind == "stream"
        else grpc.unary_unary_rpc_method_handler(unary)
        for name, kind in METHODS.items()
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(FEDERATION_SERVICE, table),)
    )
    await _health(server, health_pb2.HealthCheckResponse.NOT_SERVING)
    return await _listen(server, host, port, tls)
