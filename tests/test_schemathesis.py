"""The served OpenAPI document tells the truth: schemathesis, from the document alone, sends a
node process a few hundred generated requests per role (fixed seed, bounded) and checks that
none is a server error, every status and content type is documented, every response matches
its schema, and every request the document calls invalid is refused. The books check clean
afterwards and the log holds no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.provision import init_node
from tests.cluster import one_city
from tests.conftest import examples, policy_text
from tests.proc import TIMEOUT_FACTOR, NodeProcess, suanli

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    )
)
# per operation and phase: some four hundred requests per role at depth 1 (``make test``), five
# times as many in ``make deep``
EXAMPLES = examples(4)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[NodeProcess, dict[str, str]]]:
    data = tmp_path_factory.mktemp("schemathesis") / "hz"
    op = init_node(data, "330100", "Hangzhou", policy_text(), 0)
    node = NodeProcess(data).start()
    try:
        city = one_city(node.url, op, max_fen=1_000_000)
        yield node, {"operator": op, "holder": city.holder, "provider": city.provider}
    finally:
        node.stop()


@pytest.mark.parametrize("role", ["operator", "holder", "provider"])
def test_the_document_tells_the_truth(
    served: tuple[NodeProcess, dict[str, str]], role: str, tmp_path: Path
) -> None:
    node, tokens = served
    tool = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert tool, "schemathesis is a dev dependency (pyproject.toml)"
    result = subprocess.run(
        [
            tool,
            "run",
            f"{node.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {tokens[role]}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            "20261202",
            "--phases",
            "coverage,fuzzing",
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--request-timeout",
            str(10 * TIMEOUT_FACTOR),
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300 * TIMEOUT_FACTOR,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    assert "generated" in summary  # it ran
    # Nothing the generated requests did broke the books or reached the log as a traceback.
    assert "every invariant holds" in suanli("check", "--data", str(node.data)).stdout
    log: Any = node.log()
    assert "Traceback" not in log and "unhandled error" not in log
