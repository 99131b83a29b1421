"""Unified social credit codes (统一社会信用代码), GB 32100-2015.

Eighteen characters from a 31-symbol alphabet (digits and capitals without I, O, S, V, Z):
registration authority (1), organisation type (1), administrative region (6, GB/T 2260),
organisation code (9) and a check character computed over the first seventeen with weights
3^i mod 31.
"""

from __future__ import annotations

from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


@dataclass(frozen=True)
class USCCCheck:
    ok: bool
    reason: str  # "" when ok
    form_ok: bool = True  # 18 characters of the alphabet with a numeric region: only the
    # check character may be wrong (a known legacy code, which an operator may override)


def check_character(first17: str) -> str:
    """The check character for the first seventeen characters."""
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def check(code: str) -> USCCCheck:
    """Check a code's form and check character; the reason says what is wrong."""
    if len(code) != 18:
        return USCCCheck(False, f"must be 18 characters, got {len(code)}", False)
    for position, ch in enumerate(code, start=1):
        if ch not in _VALUE:
            return USCCCheck(
                False, f"character {ch!r} at position {position} is not allowed", False
            )
    if not code[2:8].isdigit():
        return USCCCheck(False, "positions 3-8 must be a numeric region code", False)
    expected = check_character(code[:17])
    if code[17] != expected:
        return USCCCheck(False, f"check character is {code[17]!r}, expected {expected!r}")
    return USCCCheck(True, "")


def region_of(code: str) -> str:
    """The administrative region code (GB/T 2260) inside a USCC."""
    return code[2:8]
