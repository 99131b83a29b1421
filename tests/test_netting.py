"""Netting by hand-written cases, and property tests that it conserves money and is minimal."""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from node.domain.netting import positions, transfers
from tests.conftest import examples


def test_three_cities_by_hand() -> None:
    # Hangzhou owes Guiyang 900,000; Qingdao owes Hangzhou 240,000; Guiyang owes Hangzhou 60,000.
    net = positions(
        [("330100", "520100", 900_000), ("370200", "330100", 240_000), ("520100", "330100", 60_000)]
    )
    assert net == {"330100": -600_000, "370200": -240_000, "520100": 840_000}
    assert transfers(net) == [("330100", "520100", 600_000), ("370200", "520100", 240_000)]


def test_a_cycle_cancels_out() -> None:
    net = positions([("A", "B", 100), ("B", "C", 100), ("C", "A", 100)])
    assert net == {"A": 0, "B": 0, "C": 0} and transfers(net) == []


def test_zero_sum_groups_save_transfers() -> None:
    # {A: -5, B: +5} and {C: -7, D: +3, E: +4} settle separately: 1 + 2 = 3 transfers, not 4.
    net = {"A": -5, "B": 5, "C": -7, "D": 3, "E": 4}
    assert transfers(net) == [("A", "B", 5), ("C", "D", 3), ("C", "E", 4)]


def test_bilateral_offsets() -> None:
    net = positions([("A", "B", 1_000), ("B", "A", 400)])
    assert transfers(net) == [("A", "B", 600)]


def _min_transfers_brute(values: list[int]) -> int:
    """n − (most disjoint zero-sum groups), by trying every assignment of members to groups."""
    nonzero = [v for v in values if v]

    def partitions(items: list[int]) -> Iterator[list[list[int]]]:
        if not items:
            yield []
            return
        first, rest = items[0], items[1:]
        for part in partitions(rest):
            for i in range(len(part)):
                yield [*part[:i], [first, *part[i]], *part[i + 1 :]]
            yield [[first], *part]

    best = max(len(p) for p in partitions(nonzero) if all(sum(g) == 0 for g in p)) if nonzero else 0
    return len(nonzero) - best


obligations = st.lists(
    st.tuples(st.sampled_from("ABCDEF"), st.sampled_from("ABCDEF"), st.integers(0, 10**9)),
    max_size=12,
)


@settings(max_examples=examples(300))
@given(obligations)
def test_netting_conserves_money_and_settles_everyone(obs: list[tuple[str, str, int]]) -> None:
    net = positions(obs)
    assert sum(net.values()) == 0
    moves = transfers(net)
    after = dict(net)
    for payer, payee, amount in moves:
        assert amount > 0 and payer != payee
        assert net[payer] < 0 < net[payee]  # only debtors pay, only creditors receive
        after[payer] += amount
        after[payee] -= amount
    assert all(v == 0 for v in after.values())
    assert len(moves) <= max(0, sum(1 for v in net.values() if v) - 1)
    assert transfers(dict(reversed(list(net.items())))) == moves  # order does not matter


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=1, max_size=6))
def test_transfer_count_is_the_minimum(values: list[int]) -> None:
    values = [*values, -sum(values)]
    net = {f"C{i}": v for i, v in enumerate(values)}
    assert len(transfers(net)) == _min_transfers_brute(values)
