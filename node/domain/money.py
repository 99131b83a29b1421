"""Money is integer fen (分). Ratios are basis points. Subsidies truncate toward zero.

Nothing on a path that touches a balance ever sees a float: amounts arrive as integers (the
API refuses anything else), ratios are integers in basis points, and the only arithmetic is
integer multiplication and truncating division.
"""

from __future__ import annotations

from typing import NewType

Fen = NewType("Fen", int)

BASIS_POINTS = 10_000
FEN_PER_YUAN = 100


def apply_ratio(amount: int, ratio_bp: int) -> Fen:
    """Return ``amount × ratio_bp / 10 000``, truncated toward zero.

    Nanning's rules say so explicitly, and every city here follows them: a subsidy is never
    rounded up.
    """
    if ratio_bp < 0 or ratio_bp > BASIS_POINTS:
        raise ValueError(f"ratio {ratio_bp} bp is outside 0..10000")
    product = amount * ratio_bp
    # int() of a true division would go through a float; keep to integers and truncate.
    quotient = abs(product) // BASIS_POINTS
    return Fen(quotient if product >= 0 else -quotient)


def yuan(amount: int) -> str:
    """Format fen as yuan for people: ``123456789`` → ``¥1,234,567.89``."""
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), FEN_PER_YUAN)
    return f"{sign}¥{whole:,}.{part:02d}"


def percent(ratio_bp: int) -> str:
    """Basis points as a percentage for people, in integers: ``3000`` → ``30%``, ``1250`` → ``12.5%``."""
    whole, part = divmod(ratio_bp, 100)
    return f"{whole}%" if part == 0 else f"{whole}.{part:02d}".rstrip("0") + "%"
