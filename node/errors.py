"""One error hierarchy. Every error carries a stable machine code and a human sentence.

Transports map these once: ``HTTP_STATUS`` (``node/api/errors.py``) for REST, ``GRPC_STATUS``
(``federation/server.py``) for gRPC. ``BY_CODE`` finds the class of a stable code (a peer's
refusal, say).
A client always gets ``{"error": {"code": ..., "message": ...}}`` and never a stack trace.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SuanliError(Exception):
    """Base of every error a client may see."""

    code: ClassVar[str] = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @property
    def reason(self) -> str:
        """What went wrong, for this node's logs and metrics (the code, unless finer)."""
        return self.code

    def for_log(self) -> str:
        """The sentence for this node's log, which may say more than the client is told."""
        return self.message

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return {"error": body}


# Bad input --------------------------------------------------------------------------------
class InvalidRequest(SuanliError):
    """The request is malformed: a field is missing, of the wrong type or out of range."""

    code = "invalid_request"


class PayloadTooLarge(SuanliError):
    code = "payload_too_large"


class InvalidUSCC(SuanliError):
    """The unified social credit code fails GB 32100-2015 (format or check character)."""

    code = "invalid_uscc"


class UnknownComputeClass(SuanliError):
    code = "unknown_compute_class"


class UnknownCategory(SuanliError):
    code = "unknown_category"


class CategoryMismatch(SuanliError):
    """The USCC's registration type does not fit the holder category (e.g. 12… as enterprise)."""

    code = "category_mismatch"


class PolicyInvalid(SuanliError):
    code = "policy_invalid"


# Who is asking --------------------------------------------------------------------------
class Unauthenticated(SuanliError):
    code = "unauthenticated"


class Forbidden(SuanliError):
    code = "forbidden"


class TooManyAttempts(SuanliError):
    """Too many failed sign-ins from one address in a short time: wait, then try again."""

    code = "too_many_attempts"


# Not found --------------------------------------------------------------------------------
class NotActive(SuanliError):
    """This process is the standby of an active/standby pair: it serves nothing until it holds
    the data folder's lock; the message names where the active one serves."""

    code = "not_active"


class NotFound(SuanliError):
    code = "not_found"


class HolderNotFound(NotFound):
    code = "holder_not_found"


class ProviderNotFound(NotFound):
    code = "provider_not_found"


class VoucherNotFound(NotFound):
    code = "voucher_not_found"


class HoldNotFound(NotFound):
    code = "hold_not_found"


class DecisionNotFound(NotFound):
    code = "decision_not_found"


class TokenNotFound(NotFound):
    code = "token_not_found"


class PayoutNotFound(NotFound):
    """No signed payout statement for that provider and window (nothing is owed there)."""

    code = "payout_not_found"


class PaymentNotFound(NotFound):
    code = "payment_not_found"


class OfferNotFound(NotFound):
    code = "offer_not_found"


class OrderNotFound(NotFound):
    code = "order_not_found"


class PolicyMissing(SuanliError):
    """No policy is loaded for the fiscal year of the request."""

    code = "policy_missing"


# Conflicts with the books -----------------------------------------------------------------
class AlreadyExists(SuanliError):
    code = "already_exists"


class Overpayment(SuanliError):
    """A payment that would take what was paid for a payout statement above its total."""

    code = "overpayment"


class AlreadyReversed(SuanliError):
    """A payment is reversed once, by one recorded reversal; a reversal is never reversed."""

    code = "already_reversed"


class TransferNotFound(NotFound):
    code = "transfer_not_found"


class NothingToSettle(SuanliError):
    """No agreed statement with that city is left to settle (before the cut-off asked)."""

    code = "nothing_to_settle"


class NotPayer(SuanliError):
    """On the statements left to settle, the other city owes this one: it sends the advice."""

    code = "not_payer"


class AmountMismatch(SuanliError):
    """A transfer's amount is not the net the payer owes on the statements it settles."""

    code = "amount_mismatch"


class NettingMismatch(SuanliError):
    """A transfer advice's netting id is not the one of the statements it lists."""

    code = "netting_mismatch"


class StatementNotAgreed(SuanliError):
    """A statement a transfer lists is not agreed here with the same total and digest."""

    code = "statement_not_agreed"


class StatementCovered(SuanliError):
    """A statement a transfer lists is already settled, or being settled, by another one."""

    code = "statement_already_covered"


class TransferConflict(SuanliError):
    """The same transfer id with other content, or an answer that contradicts the one given."""

    code = "transfer_conflict"


class TransferNotAwaiting(SuanliError):
    """Only a transfer advised to this city and not yet answered can be confirmed or disputed."""

    code = "transfer_not_awaiting"


class DuplicateReference(SuanliError):
    """The bank's transfer reference of an earlier payment: most likely the same transfer
    recorded twice."""

    code = "duplicate_reference"


class OrderAlreadySubsidised(SuanliError):
    """The same provider order can never be subsidised twice (R3)."""

    code = "order_already_subsidised"


class OfferWithdrawn(SuanliError):
    """The offer was withdrawn: it cannot change again (publish a new one)."""

    code = "offer_withdrawn"


class OfferExpired(SuanliError):
    code = "offer_expired"


class OfferChanged(SuanliError):
    """The offer has a newer version than the one asked for: ask again at its terms."""

    code = "offer_changed"


class OrderDecided(SuanliError):
    """The order was already accepted, declined or refused."""

    code = "order_decided"


class HoldNotOpen(SuanliError):
    code = "hold_not_open"


class HoldExpired(SuanliError):
    code = "hold_expired"


class VoucherNotActive(SuanliError):
    code = "voucher_not_active"


class VoucherExpired(SuanliError):
    code = "voucher_expired"


class InsufficientBalance(SuanliError):
    code = "insufficient_balance"


class AuthorizationInvalid(SuanliError):
    """The one-time code is unknown (or was already used)."""

    code = "authorization_invalid"


class AuthorizationUsed(SuanliError):
    code = "authorization_used"


class AuthorizationExpired(SuanliError):
    code = "authorization_expired"


class CaptureExceedsHold(SuanliError):
    code = "capture_exceeds_hold"


class ComputeClassMismatch(SuanliError):
    code = "compute_class_mismatch"


class OutOfScope(SuanliError):
    """Storage, network and security services are not intelligent compute (R5)."""

    code = "out_of_scope"


class ProviderNotApproved(SuanliError):
    code = "provider_not_approved"


class RelatedParty(SuanliError):
    code = "related_party"


class WrongProvider(SuanliError):
    """The spend authorization names another provider (R6)."""

    code = "wrong_provider"


class BudgetBelowCommitted(SuanliError):
    code = "budget_below_committed"


class Invariant(SuanliError):
    """A money invariant does not hold. Never expected; reported, never hidden."""

    code = "invariant_violated"


# Federation: policy between cities --------------------------------------------------------
class PeerNotFound(NotFound):
    code = "peer_not_found"


class OutboundNotAllowed(SuanliError):
    """The issuing city does not let its vouchers be spent in that region (R10)."""

    code = "outbound_not_allowed"


class InboundNotAllowed(SuanliError):
    """This city's providers do not accept that city's vouchers (R10)."""

    code = "inbound_not_allowed"


class ExposureCapExceeded(SuanliError):
    """The issuer would owe the acquirer's city more than its cap in this window (R10)."""

    code = "exposure_cap_exceeded"


class HoldPending(SuanliError):
    """The issuer has not answered yet; the node keeps asking. Try again shortly."""

    code = "hold_pending"


# Federation: envelope refusals, each distinct (BRIEF §5) ---------------------------------
class EnvelopeRefused(SuanliError):
    """A federation message refused at the door (docs/protocol.md §3.1)."""


class UnknownSigner(EnvelopeRefused):
    """The envelope is not signed by a key this node trusts: the signer region is not a peer,
    the key id is not one of that peer's keys, or the signature does not verify with it. One
    code and one fixed sentence for the three, so that a caller who has proven nothing cannot
    tell which peers and keys this node knows (docs/protocol.md §3.1); ``reason`` says which,
    for this node's log and its refusals metric only."""

    code = "unknown_signer"
    PUBLIC: ClassVar[str] = "the envelope is not signed by a key this node trusts"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(self.PUBLIC)
        self._reason = reason
        self.detail = detail

    @property
    def reason(self) -> str:
        return self._reason

    def for_log(self) -> str:
        return f"{self._reason}: {self.detail}"


class UnknownKey(EnvelopeRefused):
    """A node card that is not signed by one of its own valid keys (card import)."""

    code = "unknown_key"


class KeyExpired(EnvelopeRefused):
    code = "key_expired"


class KeyRevoked(EnvelopeRefused):
    code = "key_revoked"


class BadSignature(EnvelopeRefused):
    code = "bad_signature"


class OriginMismatch(EnvelopeRefused):
    """The body's origin is not the region whose key signed it."""

    code = "origin_mismatch"


class WrongDestination(EnvelopeRefused):
    code = "wrong_destination"


class ClockSkew(EnvelopeRefused):
    code = "clock_skew"


class MalformedMessage(EnvelopeRefused):
    code = "malformed_message"


class MessageTooLarge(EnvelopeRefused):
    """A federation request over the protocol's size limit (1 MiB)."""

    code = "message_too_large"


class WrongMessageType(EnvelopeRefused):
    code = "wrong_message_type"


class OfferInvalid(SuanliError):
    """A signed offer whose signature does not verify with its origin's keys, or that does
    not parse or breaks the offer rules (docs/protocol.md §5d): the whole message is refused."""

    code = "offer_invalid"


class ModifiedReplay(EnvelopeRefused):
    """A known message id arrived with a different payload (Mojaloop's MODIFIED_REQUEST)."""

    code = "modified_replay"


def _family(cls: type[SuanliError]) -> tuple[type[SuanliError], ...]:
    return (cls, *(c for sub in cls.__subclasses__() for c in _family(sub)))


ALL_ERRORS: tuple[type[SuanliError], ...] = _family(SuanliError)
# The class of each stable code; a code two classes share (a base's) names the base.
BY_CODE: dict[str, type[SuanliError]] = {cls.code: cls for cls in reversed(ALL_ERRORS)}


# Every reason the door gives for refusing an envelope, for logs and the refusals metric (the
# three behind ``unknown_signer`` are told apart there).
DOOR_REASONS = tuple(
    dict.fromkeys(
        (
            "unknown_origin",
            "unknown_key",
            "bad_signature",
            *(c.code for c in EnvelopeRefused.__subclasses__() if c is not UnknownSigner),
        )
    )
)
