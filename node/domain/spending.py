"""Spending rules and the hold state machine (BRIEF §4.2), pure.

A hold reserves a subsidy: order amount × the voucher's ratio, truncated, limited by the
voucher's available balance and the authorization's maximum. It then ends exactly once:

    held ──capture(≤ amount)──▶ captured
      ├──void──────────────────▶ voided
      └──expiry (sweeper)──────▶ expired

Captured, voided and expired are final. Whatever is not captured returns to the voucher.
"""

from __future__ import annotations

from dataclasses import dataclass

from node import errors
from node.domain.fields import is_region
from node.domain.model import Authorization, Hold, Provider, Voucher
from node.domain.money import apply_ratio
from node.domain.policy import Policy

HOLD_FINAL = ("captured", "voided", "expired")


@dataclass(frozen=True)
class SpendCode:
    """A holder's one-time spend code, ``sac_<issuing region>_<secret>``: the region says which
    city to ask (docs/protocol.md §4.2). Parsed once, instead of split wherever it is needed."""

    region: str
    secret: str

    @classmethod
    def parse(cls, text: str) -> SpendCode | None:
        """The code's parts, or None if it does not have the form (then it is no one's:
        refused as ``authorization_invalid`` where it is looked up)."""
        prefix, _, rest = text.partition("_")
        region, _, secret = rest.partition("_")
        if prefix != "sac" or not is_region(region) or not secret:
            return None
        return cls(region, secret)


LOCAL_HOLD, REMOTE_HOLD = "hd", "rh"  # the id prefixes holds are minted with


@dataclass(frozen=True)
class HoldRef:
    """A hold id as a client names it, and which kind of hold it is: one of this city's
    vouchers (``hd_…``, kept here) or a peer city's voucher redeemed by a provider here
    (``rh_…``, kept here as a remote hold, decided by the issuing city). Ids are minted with
    their prefix (``LOCAL_HOLD``, ``REMOTE_HOLD``), so the id carries its kind, as a spend code
    carries its region; an id of neither form is looked up as a local one (and not found)."""

    id: str
    remote: bool

    @classmethod
    def parse(cls, hold_id: str) -> HoldRef:
        return cls(hold_id, hold_id.startswith(REMOTE_HOLD + "_"))


def check_voucher_spendable(voucher: Voucher, now_ms: int) -> None:
    if voucher.state != "active":
        raise errors.VoucherNotActive(f"voucher {voucher.id} is {voucher.state}")
    if now_ms >= voucher.expires_at:
        raise errors.VoucherExpired(f"voucher {voucher.id} expired")


def check_provider_may_redeem(provider: Provider, holder_uscc: str) -> None:
    if not provider.approved:
        raise errors.ProviderNotApproved(
            f"provider {provider.id} is {provider.state}, not approved"
        )
    if provider.related_to(holder_uscc):
        raise errors.RelatedParty("holder and provider are the same entity or declared related")


def check_authorization(auth: Authorization, region: str, provider_id: str, now_ms: int) -> None:
    if auth.provider_id != provider_id or auth.provider_region != region:
        raise errors.WrongProvider("this authorization is for another provider")
    if auth.state == "used":
        raise errors.AuthorizationUsed("this one-time code was already used")
    if auth.state == "cancelled":  # the same code as expiry: the code is no longer valid
        raise errors.AuthorizationExpired("this authorization was cancelled by its holder")
    if auth.state != "open" or now_ms >= auth.expires_at:
        raise errors.AuthorizationExpired("this authorization has expired")


def check_order_class(policy: Policy, voucher: Voucher, compute_class: str) -> None:
    if compute_class in policy.excluded_services:
        raise errors.OutOfScope(
            f"{compute_class} is not intelligent compute and is never subsidised"
        )
    if compute_class != voucher.compute_class:
        raise errors.ComputeClassMismatch(
            f"voucher {voucher.id} covers {voucher.compute_class}, not {compute_class}"
        )


def hold_amount(order_amount_fen: int, voucher: Voucher, auth: Authorization) -> int:
    """Subsidy for an order: ratio applied and truncated, within balance and authorization."""
    amount = min(
        apply_ratio(order_amount_fen, voucher.ratio_bp), voucher.available_fen, auth.max_fen
    )
    if amount <= 0:
        if voucher.available_fen <= 0:
            raise errors.InsufficientBalance(f"voucher {voucher.id} has no available balance")
        raise errors.InvalidRequest(
            "order_amount_fen: the subsidy for this order truncates to zero"
        )
    return amount


def hold_expiry(policy: Policy, voucher: Voucher, now_ms: int) -> int:
    """A hold lives for the policy's hold expiry, never past its voucher's own expiry."""
    return min(now_ms + policy.hold_expiry_seconds * 1000, voucher.expires_at)


def check_capture(hold: Hold, amount_fen: int, now_ms: int) -> None:
    check_hold_open(hold, now_ms)
    if amount_fen > hold.amount_fen:
        raise errors.CaptureExceedsHold(
            f"capture of {amount_fen} fen exceeds the hold of {hold.amount_fen} fen"
        )


def check_hold_open(hold: Hold, now_ms: int) -> None:
    if hold.state in HOLD_FINAL:
        raise errors.HoldNotOpen(f"hold {hold.id} is already {hold.state}")
    if now_ms >= hold.expires_at:
        raise errors.HoldExpired(f"hold {hold.id} expired")
