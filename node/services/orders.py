"""Orders against offers (issue 20, item 4; the states in node/domain/orders.py).

A holder asks for an order against an offer in the catalog. For an offer of this city, both
sides are here: one row, ``local``. For a peer's offer, this node (the holder's side) keeps a
``holder`` row and sends the provider's city an ORDER_REQUEST through the outbox, in the same
transaction; that city checks it against its offer as it is now and keeps a ``provider`` row
(or refuses: the request is then ``refused`` here). The provider accepts with its own order id
or declines; its city sends the answer back as ORDER_ANSWER, the same way. Both messages pass
the receiver's inbox (``receive_once_txn``): applied once, answered the same on a resend.

The accepted order is redeemed by the usual flow under its order id: the holder gives the
provider a spend code, the provider holds and captures against that order id. Each city's view
of the order finds the redemption by (provider, order id) in its own books.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from node import errors
from node.clock import Clock, iso
from node.domain import orders as rules
from node.domain.offers import Offer
from node.domain.orders import OrderAnswer, OrderRequest
from node.services.common import Principal, new_id, require_role
from node.services.inboxed import apply_answer_once, receive_once_txn
from node.services.ports import (
    Acknowledged,
    AckSealer,
    Applied,
    Evidence,
    Inbound,
    OrderWriter,
    Refusal,
    Row,
    Sender,
)
from node.store import catalog, ledger, registry
from node.store import orders as store
from node.store.engine import Books

logger = logging.getLogger(__name__)

TIMES = ("created_at", "decided_at", "updated_at")


class Orders:
    def __init__(
        self,
        db: Books,
        clock: Clock,
        region: str,
        writer: OrderWriter | None = None,
        sender: Sender | None = None,
        sealer: AckSealer | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self.region = region
        self._writer = writer
        self._sender = sender
        self._sealer = sealer

    def federate(self, writer: OrderWriter, sender: Sender, sealer: AckSealer) -> None:
        """Orders against peers' offers need the federation's outbox (built after this)."""
        self._writer, self._sender, self._sealer = writer, sender, sealer

    # The holder ---------------------------------------------------------------------------

    async def request(
        self, who: Principal, origin: str, offer_id: str, card_hours: int, note: str
    ) -> dict[str, Any]:
        holder_id = require_role(who, "holder")
        now = self._clock.now_ms()
        if len(note) > rules.NOTE_MAX:
            raise errors.InvalidRequest(f"note: at most {rules.NOTE_MAX} characters")

        def txn(conn: sqlite3.Connection) -> tuple[dict[str, Any], Row | None]:
            offer = catalog.get_offer(conn, origin, offer_id)
            if offer is None:
                raise errors.OfferNotFound(f"no offer {offer_id} of {origin} in this catalog")
            rules.check_orderable(offer, now)
            amount = rules.order_amount(offer, card_hours)
            holder = registry.get_holder(conn, holder_id)
            request = OrderRequest(
                new_id("or"),
                offer.offer_id,
                offer.version,
                card_hours,
                amount,
                holder.id,
                holder.name,
                holder.uscc,
                note,
            )
            local = origin == self.region
            row: Row | None = None
            message_id = None
            if local:
                if not registry.get_provider(conn, offer.provider_id).approved:
                    raise errors.ProviderNotApproved("this offer's provider is not approved now")
            else:
                if self._writer is None:
                    raise errors.PeerNotFound(f"{origin}: this node is not federated")
                message_id = new_id("m")
                row = self._writer.order_request_txn(conn, origin, request, message_id, now)
            _keep_txn(
                conn,
                "local" if local else "holder",
                "" if local else origin,
                request,
                offer,
                message_id,
                now,
            )
            ledger.audit(
                conn,
                now,
                who.actor,
                "order.request",
                request.request_id,
                offer=offer_id,
                origin=origin,
                card_hours=card_hours,
                amount_fen=amount,
            )
            return self._view_txn(conn, request.request_id), row

        view, row = await self._db.run("order_request", txn)
        logger.info("order %s requested against %s/%s", view["id"], origin, offer_id)
        if row is not None and self._sender is not None:
            await self._sender.send_now(row)
            view = await self.get(who, view["id"])
        return view

    # The provider ---------------------------------------------------------------------------

    async def decide(
        self, who: Principal, request_id: str, accept: bool, order_id: str, reason: str
    ) -> dict[str, Any]:
        provider_id = require_role(who, "provider")
        answer = OrderAnswer(
            request_id, accept, order_id if accept else "", "" if accept else reason
        )
        rules.check_answer(answer)
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> tuple[dict[str, Any], Row | None]:
            order = store.get_order(conn, request_id)
            if (
                order is None
                or order["provider_id"] != provider_id
                or order["side"] not in ("provider", "local")
            ):
                raise errors.OrderNotFound(f"no order request {request_id[:70]!r} for you")
            if order["state"] != "requested":
                raise errors.OrderDecided(f"order {request_id} is already {order['state']}")
            if accept and store.order_id_taken(conn, self.region, provider_id, order_id):
                raise errors.AlreadyExists(f"order_id: {order_id} names another order already")
            row: Row | None = None
            message_id = None
            if order["side"] == "provider":
                if self._writer is None:
                    raise errors.PeerNotFound(f"{order['peer']}: this node is not federated")
                message_id = new_id("m")
                row = self._writer.order_answer_txn(conn, order["peer"], answer, message_id, now)
            state = "accepted" if accept else "declined"
            store.decide(
                conn,
                request_id,
                state,
                answer.order_id or None,
                answer.reason or None,
                now,
                answer_message_id=message_id,
            )
            ledger.audit(
                conn,
                now,
                who.actor,
                f"order.{state}",
                request_id,
                order_id=answer.order_id,
                reason=answer.reason,
            )
            return self._view_txn(conn, request_id), row

        view, row = await self._db.run("order_decide", txn)
        logger.info("order %s %s by %s", request_id, view["state"], provider_id)
        if row is not None and self._sender is not None:
            await self._sender.send_now(row)
        return view

    # Everyone's view ----------------------------------------------------------------------------

    async def list(self, who: Principal, limit: int, after: str) -> list[dict[str, Any]]:
        column, subject = _scope(who)

        def txn(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = store.list_orders(conn, column, subject, limit, after)
            return [self._shown_txn(conn, r) for r in rows if _mine(who, r)]

        return await self._db.read("orders_list", txn)

    async def get(self, who: Principal, request_id: str) -> dict[str, Any]:
        def txn(conn: sqlite3.Connection) -> dict[str, Any]:
            order = store.get_order(conn, request_id)
            if order is None or not _mine(who, order):
                raise errors.OrderNotFound(f"no order {request_id[:70]!r}")
            return self._shown_txn(conn, order)

        return await self._db.read("order_get", txn)

    def _view_txn(self, conn: sqlite3.Connection, request_id: str) -> dict[str, Any]:
        order = store.get_order(conn, request_id)
        if order is None:  # cannot happen: read in the transaction that wrote it
            raise errors.Invariant(f"order {request_id} vanished")
        return self._shown_txn(conn, order)

    def _shown_txn(self, conn: sqlite3.Connection, order: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in order.items() if not k.endswith("message_id")}
        for name in TIMES:
            view[name] = iso(order[name]) if order[name] is not None else None
        view["redemption"] = (
            store.redemption(
                conn, self.region, order["offer_origin"], order["provider_id"], order["order_id"]
            )
            if order["order_id"]
            else None
        )
        return view

    # The door: a peer's ORDER_REQUEST or ORDER_ANSWER ------------------------------------------

    async def receive(self, message: Inbound) -> bytes:
        if self._sealer is None:
            raise errors.Invariant("orders receive only on a federated node")
        sealer = self._sealer
        now = self._clock.now_ms()
        told: list[str] = []
        body = message.body

        def effect_txn(conn: sqlite3.Connection) -> str:
            if isinstance(body, OrderRequest):
                return self._request_txn(conn, message.origin, message.message_id, body, now)
            if isinstance(body, OrderAnswer):
                return self._answer_txn(conn, message.origin, body, now)
            raise errors.Invariant("orders receive requests and answers only")

        reply = await self._db.run(
            "order_receive",
            lambda conn: receive_once_txn(conn, message, effect_txn, sealer, now, told),
        )
        kind = "ORDER_REQUEST" if isinstance(body, OrderRequest) else "ORDER_ANSWER"
        logger.info("accepted %s %s from %s: %s", kind, message.message_id, message.origin, told[0])
        return reply

    def _request_txn(
        self, conn: sqlite3.Connection, origin: str, message_id: str, r: OrderRequest, now: int
    ) -> str:
        problem = rules.request_problem(r)
        if problem:
            raise errors.InvalidRequest(problem)
        offer = catalog.get_offer(conn, self.region, r.offer_id)
        if offer is None:
            raise errors.OfferNotFound(f"no offer {r.offer_id[:70]!r} of {self.region}")
        rules.check_request(r, offer, now)
        if not registry.get_provider(conn, offer.provider_id).approved:
            raise errors.ProviderNotApproved("this offer's provider is not approved now")
        if store.get_order(conn, r.request_id) is not None:
            raise errors.AlreadyExists(f"request_id: {r.request_id} was used already")
        _keep_txn(conn, "provider", origin, r, offer, f"{origin}:{message_id}", now)
        ledger.audit(
            conn,
            now,
            f"peer:{origin}",
            "order.received",
            r.request_id,
            offer=r.offer_id,
            card_hours=r.card_hours,
            amount_fen=r.amount_fen,
        )
        return f"order {r.request_id} for offer {r.offer_id} awaits its provider"

    def _answer_txn(self, conn: sqlite3.Connection, origin: str, a: OrderAnswer, now: int) -> str:
        try:
            rules.check_answer(a)
        except errors.InvalidRequest as exc:
            raise errors.MalformedMessage(exc.message) from None
        order = store.get_order(conn, a.request_id)
        if order is None or order["side"] != "holder" or order["peer"] != origin:
            raise errors.OrderNotFound(f"no order {a.request_id[:70]!r} sent to {origin}")
        state = "accepted" if a.accepted else "declined"
        if order["state"] != "requested":
            if order["state"] == state and (order["order_id"] or "") == a.order_id:
                return f"order {a.request_id} already {state}"
            raise errors.OrderDecided(f"order {a.request_id} is already {order['state']}")
        store.decide(conn, a.request_id, state, a.order_id or None, a.reason or None, now)
        ledger.audit(
            conn,
            now,
            f"peer:{origin}",
            f"order.{state}",
            a.request_id,
            order_id=a.order_id,
            reason=a.reason,
        )
        return f"order {a.request_id} {state}"

    # The outbox: the peer's answer to this node's message --------------------------------------

    async def apply(
        self, row: Row, request_type: str, answer: Acknowledged | Refusal, evidence: Evidence
    ) -> Applied:
        now = self._clock.now_ms()
        message_id = row["message_id"]

        def effect_txn(conn: sqlite3.Connection) -> str:
            order = store.by_message(conn, message_id)
            if order is None:  # cannot happen: both commit together
                raise errors.Invariant(f"outbox message {message_id} belongs to no order")
            if isinstance(answer, Acknowledged):
                return f"{request_type} of {order['id']} acknowledged"
            if order["request_message_id"] == message_id:
                store.decide(
                    conn,
                    order["id"],
                    "refused",
                    None,
                    f"{answer.code}: {answer.message}"[:500],
                    now,
                )
            ledger.audit(
                conn,
                now,
                f"peer:{row['peer']}",
                f"order.{request_type}_refused",
                order["id"],
                code=answer.code,
                message=answer.message,
            )
            return f"{request_type} of {order['id']} refused: {answer.code}"

        return await apply_answer_once(self._db, "order_apply", row, answer, effect_txn, now)


def _keep_txn(
    conn: sqlite3.Connection,
    side: str,
    peer: str,
    r: OrderRequest,
    offer: Offer,
    request_message_id: str | None,
    now: int,
) -> None:
    """Keep a requested order as one side sees it: the request and the offer it names."""
    store.put_order(
        conn,
        id=r.request_id,
        side=side,
        peer=peer,
        holder_id=r.holder_id,
        holder_name=r.holder_name,
        holder_uscc=r.holder_uscc,
        offer_origin=offer.origin,
        offer_id=offer.offer_id,
        offer_version=offer.version,
        provider_id=offer.provider_id,
        provider_name=offer.provider_name,
        compute_class=offer.terms.compute_class,
        card_hours=r.card_hours,
        price_fen=offer.terms.price_fen,
        amount_fen=r.amount_fen,
        note=r.note,
        state="requested",
        request_message_id=request_message_id,
        created_at=now,
        updated_at=now,
    )


def _scope(who: Principal) -> tuple[str | None, str | None]:
    if who.role == "holder":
        return "holder_id", require_role(who, "holder")
    if who.role == "provider":
        return "provider_id", require_role(who, "provider")
    if who.role in ("operator", "system"):
        return None, None
    raise errors.Forbidden("orders are seen by their holder, their provider and operators")


def _mine(who: Principal, order: dict[str, Any]) -> bool:
    if who.role in ("operator", "system"):
        return True
    if who.role == "holder":
        return order["holder_id"] == who.subject_id and order["side"] in ("holder", "local")
    return order["provider_id"] == who.subject_id and order["side"] in ("provider", "local")
