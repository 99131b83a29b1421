"""The HTTP server around the REST app: aiohttp's own, with its error path made safe.

aiohttp answers a request its parser cannot read (a control byte in a header, a header line
over 8 KiB, a bad method) itself, before any middleware: it logs the parser's exception at
ERROR with a traceback, and the exception's text quotes the offending header line (a bearer
token included), and it sends that text back to the client. Anyone could fill the log with
tracebacks without a token, and a valid token in a malformed request ended up in the log.
Here such a request gets one log line at INFO naming the exception class and the peer address
(nothing the client sent), and a JSON error like every other (``bad_request``). The log
formatters redact credentials anyway (node/logs.py); this keeps the lines short and few.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

logger = logging.getLogger(__name__)


class _Handler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status == 500:
            logger.error("unhandled error serving %s", request.remote, exc_info=exc)
            code, text = "internal", "internal error; the operator's log has details"
        else:
            logger.info(
                "refused an unreadable HTTP request from %s (%d, %s)",
                request.remote,
                status,
                type(exc).__name__ if exc is not None else "-",
            )
            code, text = "bad_request", "the HTTP request could not be read"
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send an error response")
        response = web.Response(
            status=status,
            text=json.dumps({"error": {"code": code, "message": text}}),
            content_type="application/json",
        )
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """``web.AppRunner`` whose connections are served by ``_Handler``."""

    async def _make_server(self) -> web.Server:
        base = await super()._make_server()  # the app's startup, as aiohttp does it
        return _Server(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **base._kwargs,
        )
