"""The benchmark: ``suanli bench`` (``make bench``). See docs/benchmarks.md for results."""
