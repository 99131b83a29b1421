"""Multilateral netting: from what each city owes each other city, the fewest transfers.

Pure and deterministic: every member that starts from the same countersigned statements
computes the same positions and the same transfers.

A city's net position is what it is owed minus what it owes (positive: it receives). Money is
conserved: positions sum to zero. Settling a set of non-zero positions takes at least
``n − g`` transfers, where ``g`` is the largest number of disjoint groups whose positions each
sum to zero (each group of ``k`` settles with ``k − 1`` transfers, and no fewer). For up to
``EXACT_LIMIT`` non-zero members that optimum is found exactly, by dynamic programming over
subsets; beyond, groups are formed greedily (still at most ``n − 1`` transfers).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable

EXACT_LIMIT = 16


def positions(obligations: Iterable[tuple[str, str, int]]) -> dict[str, int]:
    """(debtor, creditor, fen) obligations → net position per city (zero positions kept)."""
    net: dict[str, int] = defaultdict(int)
    for debtor, creditor, amount in obligations:
        if amount < 0:
            raise ValueError("an obligation is never negative")
        net[debtor] -= amount
        net[creditor] += amount
    return dict(sorted(net.items()))


def _settle_group(members: list[tuple[str, int]]) -> list[tuple[str, str, int]]:
    """Transfers settling a zero-sum group: largest debtor pays largest creditor, repeatedly."""
    debtors = sorted(((-v, c) for c, v in members if v < 0), key=lambda x: (-x[0], x[1]))
    creditors = sorted(((v, c) for c, v in members if v > 0), key=lambda x: (-x[0], x[1]))
    out = []
    i = j = 0
    owe = [d[0] for d in debtors]
    due = [c[0] for c in creditors]
    while i < len(debtors) and j < len(creditors):
        amount = min(owe[i], due[j])
        out.append((debtors[i][1], creditors[j][1], amount))
        owe[i] -= amount
        due[j] -= amount
        if owe[i] == 0:
            i += 1
        if due[j] == 0:
            j += 1
    return out


def _zero_groups(items: list[tuple[str, int]]) -> list[list[tuple[str, int]]]:
    n = len(items)
    if n == 0:
        return []
    if n > EXACT_LIMIT:
        return [items]
    full = (1 << n) - 1
    total = [0] * (1 << n)
    for mask in range(1, 1 << n):
        low = (mask & -mask).bit_length() - 1
        total[mask] = total[mask & (mask - 1)] + items[low][1]
    # best[mask]: most disjoint zero-sum groups that a mask can be cut into (a mask with a
    # zero sum is one more group than its best proper zero-sum split).
    best = [0] * (1 << n)
    for mask in range(1, 1 << n):
        b = 0
        m = mask
        while m:
            bit = m & -m
            b = max(b, best[mask ^ bit])
            m ^= bit
        best[mask] = b + (1 if total[mask] == 0 else 0)
    # Walk back: peel off a smallest zero-sum sub-group that keeps the optimum.
    groups = []
    mask = full
    while mask:
        sub = mask
        chosen = mask
        while sub:
            if (
                total[sub] == 0
                and best[mask ^ sub] == best[mask] - 1
                and bin(sub).count("1") < bin(chosen).count("1")
            ):
                chosen = sub
            sub = (sub - 1) & mask
        groups.append([items[i] for i in range(n) if chosen >> i & 1])
        mask ^= chosen
    return groups


def transfers(net: dict[str, int]) -> list[tuple[str, str, int]]:
    """The fewest (payer, payee, fen) transfers that bring every position to zero."""
    if sum(net.values()) != 0:
        raise ValueError("positions do not sum to zero")
    items = sorted((c, v) for c, v in net.items() if v != 0)
    out: list[tuple[str, str, int]] = []
    for group in _zero_groups(items):
        out += _settle_group(group)
    return sorted(out)


def netting_id(statements: list[tuple[str, str, str, int, str]]) -> str:
    """What a netting covers, as one id every city computes the same from the same
    countersigned statements: SHA-256, hex, over one line per statement
    ``issuer|acquirer|window|total_fen|digest`` and ``\\n``, in (issuer, acquirer, window)
    order (docs/settlement.md, "Netting"). Transfers between cities name the run they settle
    by it."""
    lines = "".join(f"{i}|{a}|{w}|{t}|{d}\n" for i, a, w, t, d in sorted(statements))
    return hashlib.sha256(lines.encode()).hexdigest()
