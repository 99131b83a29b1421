"""The benchmark cannot rot: its quick case runs in every `make test` (real processes, real
load generator, books checked). The numbers are measured by `make bench`, not here."""

from __future__ import annotations

from tests.proc import suanli


def test_quick_benchmark_runs_and_the_books_balance() -> None:
    out = suanli("bench", "--quick")
    assert "| 1 cross-region redeem | 8 | 1 × 100 |" in out.stdout
    assert "| ok |" in out.stdout, out.stdout


def test_the_statement_benchmark_runs_and_both_ways_agree() -> None:
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "node.bench.statement", "--records", "3000"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(out.stdout)
    assert result["records"] == 3000
    assert result["chunked"]["summary"] == result["whole"]["summary"]
    assert result["chunked"]["summary"]["count"] == 3000
