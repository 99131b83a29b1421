"""REST's one table from error to HTTP status (the gRPC one is ``federation/server.py``'s
``GRPC_STATUS``). An error not in it takes the status of its nearest listed base class, so a
new ``NotFound`` is a 404 without a line here; every class is checked in
``tests/test_api_contract.py``."""

from __future__ import annotations

from node import errors

HTTP_STATUS: dict[type[errors.SuanliError], int] = {
    errors.SuanliError: 500,
    errors.InvalidRequest: 400,
    errors.PayloadTooLarge: 413,
    errors.InvalidUSCC: 422,
    errors.UnknownComputeClass: 422,
    errors.UnknownCategory: 422,
    errors.CategoryMismatch: 422,
    errors.PolicyInvalid: 422,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.TooManyAttempts: 429,
    errors.NotFound: 404,
    errors.NotActive: 503,
    errors.PolicyMissing: 409,
    errors.AlreadyExists: 409,
    errors.OrderAlreadySubsidised: 409,
    errors.Overpayment: 409,
    errors.AlreadyReversed: 409,
    errors.DuplicateReference: 409,
    errors.NothingToSettle: 409,
    errors.NotPayer: 409,
    errors.AmountMismatch: 422,
    errors.NettingMismatch: 422,
    errors.StatementNotAgreed: 409,
    errors.StatementCovered: 409,
    errors.TransferConflict: 409,
    errors.TransferNotAwaiting: 409,
    errors.OfferWithdrawn: 409,
    errors.OfferExpired: 409,
    errors.OfferChanged: 409,
    errors.OrderDecided: 409,
    errors.HoldNotOpen: 409,
    errors.HoldExpired: 409,
    errors.VoucherNotActive: 409,
    errors.VoucherExpired: 409,
    errors.InsufficientBalance: 409,
    errors.AuthorizationInvalid: 403,
    errors.AuthorizationUsed: 409,
    errors.AuthorizationExpired: 409,
    errors.CaptureExceedsHold: 422,
    errors.ComputeClassMismatch: 422,
    errors.OutOfScope: 422,
    errors.ProviderNotApproved: 403,
    errors.RelatedParty: 403,
    errors.WrongProvider: 403,
    errors.BudgetBelowCommitted: 409,
    errors.Invariant: 500,
    errors.OutboundNotAllowed: 403,
    errors.InboundNotAllowed: 403,
    errors.ExposureCapExceeded: 409,
    errors.HoldPending: 409,
    errors.EnvelopeRefused: 401,
    errors.WrongDestination: 421,
    errors.ClockSkew: 400,
    errors.MalformedMessage: 400,
    errors.MessageTooLarge: 413,
    errors.WrongMessageType: 400,
    errors.ModifiedReplay: 409,
}


def http_status(error: type[errors.SuanliError] | errors.SuanliError) -> int:
    cls = error if isinstance(error, type) else type(error)
    for base in cls.__mro__:
        status = HTTP_STATUS.get(base)
        if status is not None:
            return status
    return 500
