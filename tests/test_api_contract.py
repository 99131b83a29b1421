"""The served OpenAPI document and the route table describe exactly the same API."""

from __future__ import annotations

from node.api.appkeys import NODE
from node.api.openapi import OPERATIONS, openapi_document
from node.app import make_app
from node.errors import ALL_ERRORS
from node.node import Node
from tests.conftest import Api


def test_every_route_is_documented_and_every_documented_route_exists(node: Node) -> None:
    app = make_app(node, sweep=False)
    served = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path is None or path == "/ui" or path.startswith("/ui/"):
            continue  # the platform's pages (docs/platform.md), not the API
        served.add((route.method.lower(), path))
    documented = {(m, p) for m, p, *_ in OPERATIONS}
    assert served == documented


def test_documented_error_codes_exist() -> None:
    codes = {cls.code for cls in ALL_ERRORS}
    for _, path, _, _, _, _, errs in OPERATIONS:
        assert set(errs) <= codes, path
    doc = openapi_document()
    assert doc["openapi"].startswith("3.")
    assert doc["paths"]["/v1/holds"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in doc["paths"]["/health"]["get"]


async def test_served_document_and_statuses_match(api: Api) -> None:
    doc = await api.as_(None).get("/openapi.json")
    node = api.client.server.app[NODE]
    assert doc == openapi_document(node.policies.current())
    classes = doc["components"]["schemas"]["ComputeClass"]["enum"]
    assert "model_services" in classes and "storage" in classes  # an excluded service: declined
    assert doc["components"]["schemas"]["Category"]["enum"] == [
        "enterprise",
        "research_institute",
        "startup",
        "university",
    ]
    # A documented success status is what the node answers.
    created = await api.post("/v1/tokens", {"role": "operator"}, expect=201)
    assert "201" in doc["paths"]["/v1/tokens"]["post"]["responses"]
    assert created["token"].startswith("slo_")
    err = await api.post(
        "/v1/holders", {"uscc": "x", "name": "n", "category": "enterprise"}, expect=422
    )
    assert err["error"]["code"] in doc["paths"]["/v1/holders"]["post"]["x-error-codes"]


def test_api_reference_lists_every_operation() -> None:
    from pathlib import Path

    from node.api.openapi import markdown_table

    doc = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text()
    assert markdown_table() in doc, (
        "docs/api.md is stale: python -m node.api.openapi prints the table"
    )
    for method, path, *_ in OPERATIONS:
        assert f"| {method.upper()} | `{path}` |" in doc, (method, path)


def test_one_table_maps_every_error_to_its_http_status() -> None:
    from node import errors
    from node.api.status import HTTP_STATUS, http_status

    for cls in ALL_ERRORS:
        assert 400 <= http_status(cls) < 600, cls
        assert "status" not in vars(cls), f"{cls.__name__}: the status lives in HTTP_STATUS"
        assert errors.BY_CODE[cls.code] in cls.__mro__  # its code names it or a base
    assert http_status(errors.HoldNotFound) == 404  # through its base, NotFound
    assert http_status(errors.UnknownSigner("unknown_key", "x")) == 401
    assert set(HTTP_STATUS) <= set(ALL_ERRORS)
