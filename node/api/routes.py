"""The aiohttp application: factory, middlewares and the whole route table in one place."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import hdrs, web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from node import errors
from node.api import catalog as hc
from node.api import handlers as h
from node.api.appkeys import NODE, PRINCIPAL
from node.api.openapi import openapi_document
from node.api.status import http_status
from node.clock import year_of
from node.logs import REQUEST_ID
from node.services.common import new_id

if TYPE_CHECKING:
    from node.node import Node

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PUBLIC = frozenset({"/health", "/metrics", "/openapi.json", "/v1/node"})


def routes(metrics_handler: Handler) -> list[web.RouteDef]:
    """Every route of the API. docs/api.md and /openapi.json describe exactly these."""
    return [
        web.get("/health", h.health),
        web.get("/metrics", metrics_handler),
        web.get("/openapi.json", openapi),
        web.get("/v1/node", h.node_card),
        web.get("/v1/policy", h.get_policy),
        web.post("/v1/policy", h.load_policy),
        web.get("/v1/budget", h.budget),
        web.post("/v1/tokens", h.create_token),
        web.post("/v1/signin-links", h.create_signin_link),
        web.post("/v1/holders", h.create_holder),
        web.get("/v1/holders", h.list_holders),
        web.get("/v1/holders/{id}", h.get_holder),
        web.get("/v1/holders/{id}/statement", h.holder_statement),
        web.post("/v1/providers", h.create_provider),
        web.get("/v1/providers", h.list_providers),
        web.get("/v1/providers/{id}", h.get_provider),
        web.post("/v1/providers/{id}/state", h.set_provider_state),
        web.put("/v1/providers/{id}/related", h.set_provider_related),
        web.get("/v1/dishonesty", h.list_dishonesty),
        web.post("/v1/dishonesty", h.add_dishonesty),
        web.post("/v1/dishonesty/{id}/remove", h.remove_dishonesty),
        web.post("/v1/demands", h.submit_demand),
        web.get("/v1/decisions", h.list_decisions),
        web.get("/v1/decisions/{id}", h.get_decision),
        web.get("/v1/vouchers", h.list_vouchers),
        web.get("/v1/vouchers/{id}", h.get_voucher),
        web.post("/v1/vouchers/{id}/revoke", h.revoke_voucher),
        web.post("/v1/vouchers/{id}/authorizations", h.create_authorization),
        web.get("/v1/vouchers/{id}/authorizations", h.list_authorizations),
        web.post("/v1/authorizations/{id}/cancel", h.cancel_authorization),
        web.post("/v1/holds", h.place_hold),
        web.get("/v1/holds", h.list_holds),
        web.get("/v1/holds/{id}", h.get_hold),
        web.post("/v1/holds/{id}/capture", h.capture_hold),
        web.post("/v1/holds/{id}/void", h.void_hold),
        web.post("/v1/redemptions", h.redeem),
        web.post("/v1/offers", hc.publish_offer),
        web.get("/v1/offers", hc.list_offers),
        web.put("/v1/offers/{id}", hc.change_offer),
        web.post("/v1/offers/{id}/withdraw", hc.withdraw_offer),
        web.get("/v1/catalog", hc.search_catalog),
        web.get("/v1/catalog/utilisation", hc.catalog_utilisation),
        web.post("/v1/orders", hc.request_order),
        web.get("/v1/orders", hc.list_orders),
        web.get("/v1/orders/{id}", hc.get_order),
        web.post("/v1/orders/{id}/accept", hc.accept_order),
        web.post("/v1/orders/{id}/decline", hc.decline_order),
        web.get("/v1/journal", h.journal),
        web.get("/v1/settlement/windows", h.settlement_windows),
        web.post("/v1/settlement/windows/close", h.close_window),
        web.get("/v1/settlement/payouts", h.payouts),
        web.post("/v1/settlement/payments", h.record_payment),
        web.get("/v1/settlement/payments", h.list_payments),
        web.get("/v1/settlement/payments/{id}", h.get_payment),
        web.post("/v1/settlement/payments/{id}/reversal", h.reverse_payment),
        web.post("/v1/settlement/reconciliations", h.reconcile),
        web.get("/v1/settlement/statements", h.statements),
        web.get("/v1/reports/budget-execution", h.budget_execution),
        web.get("/v1/settlement/disputes", h.disputes),
        web.get("/v1/settlement/netting", h.netting),
        web.get("/v1/settlement/transfers/due", h.transfers_due),
        web.post("/v1/settlement/transfers", h.record_transfer),
        web.get("/v1/settlement/transfers", h.list_transfers),
        web.get("/v1/settlement/transfers/{id}", h.get_transfer),
        web.post("/v1/settlement/transfers/{id}/confirmation", h.answer_transfer),
    ]


async def openapi(request: web.Request) -> web.Response:
    policies = request.app[NODE].policies
    year = year_of(request.app[NODE].clock.now_ms())
    return web.json_response(openapi_document(policies.maybe_for_year(year)))


def _error_response(error: errors.SuanliError) -> web.Response:
    return web.json_response(error.to_json(), status=http_status(error))


def _failure(request: web.Request, exc: Exception) -> web.Response:
    """Every failure as JSON with a stable code. Never a stack trace to a client."""
    if isinstance(exc, errors.SuanliError):
        return _error_response(exc)
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return _error_response(errors.PayloadTooLarge("the request body is too large"))
    if isinstance(exc, web.HTTPNotFound):
        return _error_response(errors.NotFound(f"no resource at {request.path}"))
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return web.json_response(
            {
                "error": {
                    "code": "method_not_allowed",
                    "message": f"{request.method} is not allowed here",
                }
            },
            status=405,
            headers={"Allow": ",".join(sorted(exc.allowed_methods))},
        )
    if isinstance(exc, web.HTTPException):
        return web.json_response(
            {"error": {"code": "http_error", "message": exc.reason}}, status=exc.status
        )
    logger.error("unhandled error in %s %s", request.method, request.path, exc_info=exc)
    return web.json_response(
        {
            "error": {
                "code": "internal",
                "message": "internal error; the operator's log has details",
            }
        },
        status=500,
    )


def _page(path: str) -> bool:
    """The platform's pages (node/web) sign people in with sessions, not bearer tokens."""
    return path == "/ui" or path.startswith("/ui/")


REQUEST_ID_OK = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """What every request goes through, in one layer (each layer costs on every request):

    * an id: the caller's ``X-Request-Id`` if well-formed, else a new one, on every log line
      written while serving the request and echoed in the response;
    * a bearer token, for every endpoint except the deliberately public ones;
    * every failure mapped to JSON with a stable code (``_failure``);
    * the request counted by route and status.
    """
    given = request.headers.get("X-Request-Id", "")
    request_id = given if REQUEST_ID_OK.fullmatch(given) else new_id("r")
    token = REQUEST_ID.set(request_id)
    try:
        if request.path not in PUBLIC and not _page(request.path):
            scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not bearer.strip():
                raise errors.Unauthenticated("send Authorization: Bearer <token>")
            request[PRINCIPAL] = await request.app[NODE].tokens.authenticate(bearer.strip())
        response = await handler(request)
    except Exception as exc:
        response = _failure(request, exc)
    finally:
        REQUEST_ID.reset(token)
    response.headers["X-Request-Id"] = request_id
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    metrics = request.app[NODE].metrics
    metrics.child(metrics.http_requests, name, str(response.status)).inc()
    return response


def make_web_app(node: Node) -> web.Application:
    """The REST API of ``node``: the route table and the one middleware (aiohttp-demos'
    ``init_app``). The composition root (``node.app.make_app``) adds the node's lifetimes."""
    app = web.Application(
        client_max_size=node.config.max_body_bytes,
        middlewares=[middleware],
    )
    app[NODE] = node
    app.add_routes(routes(metrics_handler(node.metrics.registry)))
    return app


def metrics_handler(registry: CollectorRegistry) -> Handler:
    """``/metrics`` as ``prometheus_client.aiohttp``'s handler serves it (the format the
    scraper asks for, compressed by aiohttp), but collected on a thread: the budget gauges read
    the books at scrape time, and on PostgreSQL each read is a round trip that must not hold
    the event loop."""

    async def handler(request: web.Request) -> web.Response:
        accept = ",".join(request.headers.getall(hdrs.ACCEPT, []))
        encoder, content_type = choose_encoder(accept)
        body = await asyncio.to_thread(encoder, registry)
        response = web.Response(body=body, headers={hdrs.CONTENT_TYPE: content_type})
        response.enable_compression()
        return response

    return handler
