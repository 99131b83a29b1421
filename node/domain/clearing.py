"""Settling between cities (清算): what a transfer advice and a receipt confirmation must say,
and the arithmetic both cities redo to check one. Pure rules, no I/O.

Settlement between two cities is a **bilateral net**: a transfer settles a set of statements
both cities agreed, in both directions between them, and its amount is what the payer owes on
them minus what it is owed. Each side checks the same things against its own agreed
statements, so the two signatures on the exchange (the advice, the confirmation) discharge
exactly what the two cities themselves signed, with no third city's trust involved
(docs/settlement.md, "Settling between cities").
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from node import errors
from node.domain.fields import CONTROL, MAX_FEN, parse_date
from node.domain.netting import netting_id
from node.domain.payments import REASON_MAX, bank_reference

TRANSFER_ID = re.compile(r"ct_[0-9a-f]{24}")
REGION = re.compile(r"[0-9]{6}")
DIGEST = re.compile(r"[0-9a-f]{64}")
MAX_STATEMENTS = 1_000  # per transfer: the advice stays far below a message's 1 MiB
WINDOW_MAX = 64

# A transfer's states (the same words at both cities).
ADVISED = "advised"  # the payer recorded it; the advice is on its way
AWAITING = "awaiting_confirmation"  # the payee accepted the advice; its operator checks
CONFIRMED = "confirmed"  # the payee found the money: both books settle the statements
DISPUTED = "disputed"  # the payee did not find it as advised: the statements are open again
REFUSED = "refused"  # the payee's node refused the advice (a signed REFUSAL, with its code)
LIVE = (ADVISED, AWAITING, CONFIRMED)
STATES = (ADVISED, AWAITING, CONFIRMED, DISPUTED, REFUSED)  # states that hold their statements


@dataclass(frozen=True, order=True)
class Covered:
    """One agreed pair statement a transfer settles, as netting names it."""

    issuer: str
    acquirer: str
    window: str
    total_fen: int
    digest: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.issuer, self.acquirer, self.window)


@dataclass(frozen=True)
class Advice:
    transfer_id: str
    payer: str
    payee: str
    amount_fen: int
    value_date: str
    reference: str
    netting_id: str
    statements: tuple[Covered, ...]


@dataclass(frozen=True)
class Confirmation:
    transfer_id: str
    payer: str
    payee: str
    amount_fen: int
    netting_id: str
    confirmed: bool
    reason: str


def owed_by(region: str, covered: tuple[Covered, ...] | list[Covered]) -> int:
    """What ``region`` owes on these statements minus what it is owed (its net payment)."""
    return sum(c.total_fen for c in covered if c.issuer == region) - sum(
        c.total_fen for c in covered if c.acquirer == region
    )


def covering_id(covered: tuple[Covered, ...] | list[Covered]) -> str:
    """The statements' netting id (docs/settlement.md, "Netting")."""
    return netting_id([(c.issuer, c.acquirer, c.window, c.total_fen, c.digest) for c in covered])


def reason_text(reason: str, required: bool) -> str:
    reason = reason.strip()
    if (required and not reason) or len(reason) > REASON_MAX or CONTROL.search(reason):
        raise errors.InvalidRequest(
            f"reason: {'1' if required else '0'} to {REASON_MAX} printable characters"
        )
    return reason


def check_advice(advice: Advice) -> None:
    """Everything an advice must say about itself, whoever reads it (the payee's node checks
    this, then the statements against its own books). Raises ``InvalidRequest`` naming the
    field, or ``AmountMismatch`` / ``NettingMismatch``."""
    if not TRANSFER_ID.fullmatch(advice.transfer_id):
        raise errors.InvalidRequest("transfer_id: ct_ and 24 lowercase hexadecimal digits")
    if not (REGION.fullmatch(advice.payer) and REGION.fullmatch(advice.payee)):
        raise errors.InvalidRequest("payer, payee: six-digit region codes")
    if advice.payer == advice.payee:
        raise errors.InvalidRequest("payer and payee are the same city")
    if not 0 <= advice.amount_fen <= MAX_FEN:
        raise errors.InvalidRequest(f"amount_fen: 0 to {MAX_FEN}")
    parse_date("value_date", advice.value_date)
    if dt.date.fromisoformat(advice.value_date).isoformat() != advice.value_date:
        raise errors.InvalidRequest("value_date: YYYY-MM-DD")
    bank_reference(advice.reference)
    statements = advice.statements
    if not 1 <= len(statements) <= MAX_STATEMENTS:
        raise errors.InvalidRequest(f"statements: 1 to {MAX_STATEMENTS} per transfer")
    pair = {advice.payer, advice.payee}
    for c in statements:
        if {c.issuer, c.acquirer} != pair:
            raise errors.InvalidRequest(
                f"statements: {c.issuer}/{c.acquirer}/{c.window[:WINDOW_MAX]} is not between "
                "the payer and the payee"
            )
        if not 1 <= len(c.window) <= WINDOW_MAX or CONTROL.search(c.window):
            raise errors.InvalidRequest(f"statements: window: 1 to {WINDOW_MAX} characters")
        if not 0 <= c.total_fen <= MAX_FEN or not DIGEST.fullmatch(c.digest):
            raise errors.InvalidRequest(
                "statements: total_fen 0 or more, digest 64 lowercase hexadecimal digits"
            )
    keys = [c.key for c in statements]
    if keys != sorted(set(keys)):
        raise errors.InvalidRequest("statements: each once, in (issuer, acquirer, window) order")
    if advice.netting_id != covering_id(statements):
        raise errors.NettingMismatch(
            "netting_id: not the SHA-256 of the listed statements' netting lines"
        )
    net = owed_by(advice.payer, statements)
    if advice.amount_fen != net:
        raise errors.AmountMismatch(
            f"amount_fen: {advice.amount_fen}, but on these statements {advice.payer} owes "
            f"{advice.payee} {net} fen net"
        )


def check_confirmation(c: Confirmation) -> None:
    if not TRANSFER_ID.fullmatch(c.transfer_id):
        raise errors.InvalidRequest("transfer_id: ct_ and 24 lowercase hexadecimal digits")
    if not c.confirmed:
        reason_text(c.reason, required=True)
    else:
        reason_text(c.reason, required=False)


WINDOW_STATES = ("open", "closed", "statements_agreed", "netted", "paid", "settled")


def window_progress(
    statements_agreed: bool,
    payouts_signed: bool,
    statements: list[tuple[str, str, int, str | None]],
    payouts: list[tuple[str, int, int]],
) -> tuple[str, list[str]]:
    """Where a closed window of this city stands on the way to settled, and what is missing.

    ``statements``: the pair statements of the window (this city the issuer): acquirer,
    statement state, total, and the state of the transfer holding it (None: none).
    ``payouts``: provider, total, paid. A stage is reached when its condition and every
    earlier one hold: statements agreed (every acquirer's statement countersigned, the
    payouts signed), netted (every statement held by a live transfer), paid (every payout
    paid in full), settled (every transfer confirmed)."""
    agreed: list[str] = []
    if not statements_agreed:
        pending = [a for a, state, _, _ in statements if state != "agreed"]
        agreed.append(
            "statements not yet countersigned: " + ", ".join(pending)
            if pending
            else "statements not yet received from every acquirer"
        )
    if not payouts_signed:
        agreed.append("payout statements not yet signed")
    netted = [
        f"statement with {a} ({total} fen) is in no transfer"
        for a, state, total, t in statements
        if state == "agreed" and t not in LIVE
    ]
    paid = [
        f"payout to {provider}: {total - done} of {total} fen unpaid"
        for provider, total, done in payouts
        if done < total
    ]
    settled = [
        f"transfer for the statement with {a} is {t}"
        for a, state, _, t in statements
        if state == "agreed" and t in (ADVISED, AWAITING)
    ]
    state = "closed"
    for stage, wanting in (
        ("statements_agreed", agreed),
        ("netted", netted),
        ("paid", paid),
        ("settled", settled),
    ):
        if wanting:
            break
        state = stage
    return state, agreed + netted + paid + settled
