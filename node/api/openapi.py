"""The OpenAPI 3 document served at /openapi.json, built from one table
(``node/api/operations.py``).

``tests/test_api_contract.py`` checks that this table and the route table name exactly the
same operations, and that every error code listed here is one the node really uses.
"""

from __future__ import annotations

from typing import Any

from node import errors
from node.api import schemas
from node.api.operations import CONTENT, OPERATIONS, QUERY
from node.api.shapes import ERR, ID, OBJ, S
from node.api.status import http_status
from node.domain.policy import Policy

COMMON_ERRORS = ("invalid_request", "payload_too_large", "unauthenticated", "forbidden")


def _status_of(code: str) -> int:
    return http_status(errors.BY_CODE[code])


def openapi_document(policy: Policy | None = None) -> dict[str, Any]:
    """The document; with ``policy``, compute classes and holder categories are that policy's
    (the node serves it with its current one)."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, role, summary, schema, ok, codes in OPERATIONS:
        answer = schemas.ANSWERS.get((method, path), OBJ)
        content = CONTENT.get((method, path), {"application/json": {"schema": answer}})
        responses: dict[str, Any] = {
            str(status): {"description": "success", "content": content}
            for status in sorted((ok, *schemas.MORE_STATUSES.get((method, path), ())))
        }
        all_codes = codes if role == "public" else (*COMMON_ERRORS, *codes)
        by_status: dict[int, list[str]] = {}
        for code in all_codes:
            by_status.setdefault(_status_of(code), []).append(code)
        for status, names in sorted(by_status.items()):
            responses[str(status)] = {
                "description": "error codes: " + ", ".join(names),
                "content": {"application/json": {"schema": ERR}},
            }
        op: dict[str, Any] = {
            "summary": summary,
            "description": f"Role: {role}.",
            "responses": responses,
            "x-error-codes": list(all_codes),
        }
        if role != "public":
            op["security"] = [{"bearer": []}]
        parameters = list(QUERY.get((method, path), []))
        if "{id}" in path:
            parameters.insert(0, {"name": "id", "in": "path", "required": True, "schema": ID})
        if parameters:
            op["parameters"] = parameters
        if schema is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        paths.setdefault(path, {})[method] = op
    classes = sorted((*policy.compute_classes, *policy.excluded_services)) if policy else []
    categories = sorted(policy.categories) if policy else []
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Suanli city node",
            "version": "1",
            "description": "Money is integer fen. Every error is {error: {code, message}}. "
            "An optional body field sent as null is taken as absent.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {"code": S, "message": S, "details": OBJ},
                        }
                    },
                },
                **schemas.COMPONENTS,
                "ComputeClass": {
                    "type": "string",
                    "description": "a compute class of the current policy, or one of its "
                    "excluded services (declined with its reason)",
                    **({"enum": classes} if classes else {}),
                },
                "Category": {
                    "type": "string",
                    "description": "a holder category of the current policy",
                    **({"enum": categories} if categories else {}),
                },
            },
        },
    }


def markdown_table() -> str:
    """The endpoint table of docs/api.md (``python -m node.api.openapi`` prints it)."""
    lines = [
        "| method | path | role | what | success | specific error codes |",
        "|---|---|---|---|---|---|",
    ]
    for method, path, role, summary, schema, ok, codes in OPERATIONS:
        body = ""
        if schema:
            required = schema["required"]
            fields = [f"`{k}`" for k in required] + [
                f"`{k}`?" for k in schema["properties"] if k not in required
            ]
            body = "<br>body: " + ", ".join(fields)
        errs = ", ".join(f"`{c}`" for c in codes) or "—"
        lines.append(f"| {method.upper()} | `{path}` | {role} | {summary}{body} | {ok} | {errs} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
