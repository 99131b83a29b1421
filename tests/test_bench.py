"""The benchmark cannot rot: its quick case runs in every `make test` (real processes, real
load generator, books checked). The numbers are measured by `make bench`, not here."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.proc import suanli


def test_quick_benchmark_runs_and_the_books_balance() -> None:
    out = suanli("bench", "--quick")
    assert "| 1 cross-region redeem | 8 | 1 × 100 |" in out.stdout
    assert "| ok |" in out.stdout, out.stdout


def bench_module(*args: str) -> Any:
    """Run ``python -m node.tools.bench.<args>``; its JSON result (it exits non-zero if its two ways
    disagree)."""
    out = subprocess.run(
        [sys.executable, "-m", f"node.tools.bench.{args[0]}", *args[1:]],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout)


def test_the_statement_benchmark_runs_and_both_ways_agree() -> None:
    result = bench_module("statement", "--records", "3000")
    assert result["records"] == 3000
    assert result["chunked"]["summary"] == result["whole"]["summary"]
    assert result["chunked"]["summary"]["count"] == 3000


def test_the_payout_benchmark_runs_and_both_ways_agree() -> None:
    result = bench_module("payout", "--captures", "3000", "--providers", "3")
    assert result["streamed"]["summary"] == result["inline"]["summary"]
    assert result["streamed"]["summary"] == {"statements": 3, "total_fen": 3000 * 300}


def test_the_paired_benchmark_compares_two_versions_and_checks_both_books() -> None:
    result = bench_module("pair", ".", ".", "--requests", "20", "--rounds", "1")
    [one] = result["rounds"]
    assert one["books"] == {"a": "ok", "b": "ok"} and result["void"] is False
    assert abs(one["b_over_a"] - one["p50_ms"]["b"] / one["p50_ms"]["a"]) < 0.01
    assert one["p50_ms"]["a"] > 0 and one["p50_ms"]["b"] > 0 and one["first"] == "a"
    cpu = one["cpu_ms_per_request"]
    assert cpu["a"] > 0 and cpu["b"] > 0
    assert abs(one["cpu_b_over_a"] - cpu["b"] / cpu["a"]) < 0.01


def test_the_paired_benchmark_names_a_revision_it_cannot_find() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "node.tools.bench.pair", "no-such-revision", "."],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "git archive no-such-revision" in out.stderr


def test_the_floor_benchmark_runs_the_bare_flow_beside_both_federations() -> None:
    result = bench_module("floor", "--requests", "20", "--rounds", "1")
    [one] = result["rounds"]
    assert one["books"] == {"floor": "ok", "FULL": "ok", "NORMAL": "ok"}
    assert result["void"] is False and one["first"] == "floor"
    p50 = one["p50_ms"]
    assert all(p50[side] > 0 for side in ("floor", "FULL", "NORMAL"))
    assert abs(one["FULL_over_floor"] - p50["FULL"] / p50["floor"]) < 0.01
    assert abs(one["NORMAL_over_floor"] - p50["NORMAL"] / p50["floor"]) < 0.01
    assert all(one["cpu_ms_per_request"][side] > 0 for side in ("floor", "FULL", "NORMAL"))


def test_the_catalog_benchmark_runs_and_agrees_with_a_brute_force() -> None:
    result = bench_module(
        "catalog", "--origins", "12", "--per-origin", "200", "--searches", "40", "--json"
    )
    assert result["offers"] == 2400 and result["searches"] == 40
    assert result["checked_against_brute_force"] == 10
