"""Typed application and request state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from node.services.common import Principal

if TYPE_CHECKING:
    from node.node import Node

NODE: web.AppKey[Node] = web.AppKey("node")
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)
