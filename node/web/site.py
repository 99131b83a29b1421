"""The platform's pages (/ui/): a sub-application of the node's aiohttp app, server-rendered
with autoescaped Jinja2 templates, calling the same services as the REST API with the signed-in
person's ``Principal`` (docs/platform.md). ``frame`` is what every page goes through, ``pages``
the handlers, ``i18n`` the words in both languages."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp_jinja2
import jinja2
from aiohttp import web

from node.api.appkeys import NODE
from node.web import pages
from node.web.frame import HERE, pages_middleware

if TYPE_CHECKING:
    from node.node import Node


def make_pages(node: Node) -> web.Application:
    """The /ui sub-application."""
    app = web.Application(middlewares=[pages_middleware])
    app[NODE] = node
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )
    env = aiohttp_jinja2.get_env(app)
    env.globals["static"] = lambda name: f"/ui/static/{name}"
    app.add_routes(pages.routes())
    app.router.add_static("/static/", HERE / "static", append_version=True)
    return app
