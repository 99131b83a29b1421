"""Reading a node's /metrics exposition with prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from node.node import Node

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str, region: str) -> Samples:
    """Every sample by (name, sorted labels without ``region``). Fails on a series exposed
    twice (Prometheus keeps only one of them) and on a series without the node's region."""
    seen: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            assert labels.pop("region", None) == region, f"{sample} lacks region={region}"
            key = (sample.name, tuple(sorted(labels.items())))
            assert key not in seen, f"{key} is exposed twice"
            seen[key] = sample.value
    return seen


def samples(node: Node) -> Samples:
    return parse(generate_latest(node.metrics.registry).decode(), node.config.region)
