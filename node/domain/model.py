"""The records of the books, as plain values. Stores build them from rows; services read them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

_FIELDS: dict[type, tuple[str, ...]] = {}


def field_names(cls: type[Any]) -> tuple[str, ...]:
    """A dataclass's field names, computed once per class (rows and JSON are built from them)."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


# The states each record may be in: types, so that mypy (strict equality) refuses a typo in a
# comparison or a construction; the tuples are for schemas and checks. The database's CHECK
# constraints (node/store/schema.py) say the same.
ProviderKind = Literal["computing_centre", "matchmaking_partner"]
ProviderState = Literal["pending", "approved", "suspended"]
VoucherState = Literal["active", "expired", "revoked"]
AuthorizationState = Literal["open", "used", "expired", "cancelled"]
HoldState = Literal["held", "captured", "voided", "expired"]
RemoteHoldState = Literal["pending", "held", "captured", "voided", "expired", "refused"]
RemoteHoldKind = Literal["hold", "redeem"]
StatementState = Literal["sent", "agreed", "disputed"]
WindowState = Literal["closed", "settled"]

PROVIDER_KINDS: tuple[str, ...] = get_args(ProviderKind)
PROVIDER_STATES: tuple[str, ...] = get_args(ProviderState)


@dataclass(frozen=True)
class Holder:
    id: str
    uscc: str
    name: str
    category: str
    region: str
    uscc_override: str | None  # the operator's recorded reason for accepting a legacy code
    created_at: int


@dataclass(frozen=True)
class Provider:
    id: str
    uscc: str
    name: str
    kind: str
    region: str
    state: ProviderState
    related_uscc: tuple[str, ...]
    created_at: int

    @property
    def approved(self) -> bool:
        return self.state == "approved"

    def related_to(self, holder_uscc: str) -> bool:
        """Same entity or declared related party (R5)."""
        return holder_uscc == self.uscc or holder_uscc in self.related_uscc


@dataclass(frozen=True)
class Voucher:
    id: str
    holder_id: str
    fiscal_year: int
    compute_class: str
    ratio_bp: int
    face_fen: int
    available_fen: int
    held_fen: int
    captured_fen: int
    reclaimed_fen: int
    state: VoucherState
    issued_at: int
    expires_at: int
    decision_id: str


@dataclass(frozen=True)
class Authorization:
    id: str
    voucher_id: str
    holder_id: str
    provider_region: str  # this node's region, or a peer's for a cross-region provider
    provider_id: str
    max_fen: int
    expires_at: int
    state: AuthorizationState
    hold_id: str | None
    created_at: int


@dataclass(frozen=True)
class Hold:
    id: str
    voucher_id: str
    acquirer_region: str  # this node's region for local providers, else the redeeming peer
    provider_id: str
    authorization_id: str
    order_id: str
    order_amount_fen: int
    compute_class: str
    amount_fen: int
    captured_fen: int
    state: HoldState
    created_at: int
    expires_at: int
    closed_at: int | None
    settlement_window: str | None = None


@dataclass(frozen=True)
class PeerKey:
    key_id: str
    public_key: bytes
    not_before: int
    not_after: int  # 0: open-ended
    revoked: bool

    def valid_at(self, ms: int) -> bool:
        return self.not_before <= ms and (self.not_after == 0 or ms < self.not_after)


def key_states(
    keys: Iterable[PeerKey | OwnKey], now: int, current: str | None = None
) -> dict[str, str]:
    """Where each signing key of a city is in its rotation (docs/protocol.md §6):
    ``revoked``; ``not_yet_valid``; ``expired`` (past its end); ``current`` (the one the
    city signs with: ``current`` when given, else the newest valid key); ``retiring`` (still
    valid during the overlap, another key has taken over)."""
    keys = list(keys)
    valid = [
        k
        for k in keys
        if not k.revoked and k.not_before <= now and (k.not_after == 0 or now < k.not_after)
    ]
    if current is None and valid:
        current = max(valid, key=lambda k: (k.not_before, k.key_id)).key_id
    out: dict[str, str] = {}
    for k in keys:
        if k.revoked:
            out[k.key_id] = "revoked"
        elif now < k.not_before:
            out[k.key_id] = "not_yet_valid"
        elif k.not_after and now >= k.not_after:
            out[k.key_id] = "expired"
        else:
            out[k.key_id] = "current" if k.key_id == current else "retiring"
    return out


@dataclass(frozen=True)
class OwnKey:
    """One of this node's own signing keys, as its card lists it (``not_after`` 0: no end)."""

    key_id: str
    public_key: bytes
    not_before: int
    not_after: int = 0
    revoked: bool = False


@dataclass(frozen=True)
class Peer:
    region: str
    name: str
    endpoint: str
    fingerprint: str
    outbound: bool  # this city's vouchers may be spent at the peer's providers
    inbound: bool  # this city's providers accept the peer's vouchers
    exposure_cap_fen: int
    keys: tuple[PeerKey, ...] = ()
    # Every endpoint of the peer's node in the order to try them, when its card lists
    # several (an active/standby pair); empty: ``endpoint`` alone.
    endpoints: tuple[str, ...] = ()

    @property
    def dial(self) -> tuple[str, ...]:
        """The endpoints to try, in order."""
        return self.endpoints or (self.endpoint,)


@dataclass(frozen=True)
class RemoteHold:
    """Acquirer side: a peer's voucher redeemed by one of this node's providers."""

    id: str
    provider_id: str
    issuer_region: str
    kind: RemoteHoldKind
    code_sha256: str  # which authorization it used, to tell a retry from a second subsidy
    order_id: str
    order_amount_fen: int
    compute_class: str
    state: RemoteHoldState
    amount_fen: int
    captured_fen: int
    issuer_hold_id: str | None
    voucher_id: str | None
    expires_at: int | None
    settlement_window: str | None
    refusal_code: str | None
    refusal_message: str | None
    wanted: str | None  # capture | void, requested while an answer is outstanding
    wanted_fen: int | None
    created_at: int
    closed_at: int | None
    payout_window: str | None = None  # this node's window whose payouts include the capture
    holder_uscc: str | None = None  # named by the issuer in its receipt
