from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_TYPE_UNSPECIFIED: _ClassVar[MessageType]
    AUTHORIZE: _ClassVar[MessageType]
    CAPTURE: _ClassVar[MessageType]
    VOID: _ClassVar[MessageType]
    REDEEM: _ClassVar[MessageType]
    STATUS: _ClassVar[MessageType]
    CARD: _ClassVar[MessageType]
    STATEMENT: _ClassVar[MessageType]
    STATEMENTS: _ClassVar[MessageType]
    WINDOW_CLOSED: _ClassVar[MessageType]
    TRANSFER_ADVICE: _ClassVar[MessageType]
    RECEIPT_CONFIRMATION: _ClassVar[MessageType]
    OFFERS: _ClassVar[MessageType]
    OFFER_QUERY: _ClassVar[MessageType]
    ORDER_REQUEST: _ClassVar[MessageType]
    ORDER_ANSWER: _ClassVar[MessageType]
    RECEIPT: _ClassVar[MessageType]
    REFUSAL: _ClassVar[MessageType]
    ACK: _ClassVar[MessageType]
    STATEMENT_REPLY: _ClassVar[MessageType]
    STATEMENTS_REPLY: _ClassVar[MessageType]
    OFFERS_REPLY: _ClassVar[MessageType]
MESSAGE_TYPE_UNSPECIFIED: MessageType
AUTHORIZE: MessageType
CAPTURE: MessageType
VOID: MessageType
REDEEM: MessageType
STATUS: MessageType
CARD: MessageType
STATEMENT: MessageType
STATEMENTS: MessageType
WINDOW_CLOSED: MessageType
TRANSFER_ADVICE: MessageType
RECEIPT_CONFIRMATION: MessageType
OFFERS: MessageType
OFFER_QUERY: MessageType
ORDER_REQUEST: MessageType
ORDER_ANSWER: MessageType
RECEIPT: MessageType
REFUSAL: MessageType
ACK: MessageType
STATEMENT_REPLY: MessageType
STATEMENTS_REPLY: MessageType
OFFERS_REPLY: MessageType

class Envelope(_message.Message):
    __slots__ = ("body", "signer_region", "key_id", "signature", "trace")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNER_REGION_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signer_region: str
    key_id: str
    signature: bytes
    trace: str
    def __init__(self, body: _Optional[bytes] = ..., signer_region: _Optional[str] = ..., key_id: _Optional[str] = ..., signature: _Optional[bytes] = ..., trace: _Optional[str] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ("origin", "destination", "message_id", "sent_at_ms", "type", "in_reply_to")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_MS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    origin: str
    destination: str
    message_id: str
    sent_at_ms: int
    type: MessageType
    in_reply_to: str
    def __init__(self, origin: _Optional[str] = ..., destination: _Optional[str] = ..., message_id: _Optional[str] = ..., sent_at_ms: _Optional[int] = ..., type: _Optional[_Union[MessageType, str]] = ..., in_reply_to: _Optional[str] = ...) -> None: ...

class Body(_message.Message):
    __slots__ = ("header", "payload")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    header: Header
    payload: bytes
    def __init__(self, header: _Optional[_Union[Header, _Mapping]] = ..., payload: _Optional[bytes] = ...) -> None: ...

class Provider(_message.Message):
    __slots__ = ("region", "id", "uscc", "name", "kind")
    REGION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    USCC_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    region: str
    id: str
    uscc: str
    name: str
    kind: str
    def __init__(self, region: _Optional[str] = ..., id: _Optional[str] = ..., uscc: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("order_id", "order_amount_fen", "compute_class")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_CLASS_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    order_amount_fen: int
    compute_class: str
    def __init__(self, order_id: _Optional[str] = ..., order_amount_fen: _Optional[int] = ..., compute_class: _Optional[str] = ...) -> None: ...

class AuthorizeRequest(_message.Message):
    __slots__ = ("code", "provider", "order")
    CODE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    code: str
    provider: Provider
    order: Order
    def __init__(self, code: _Optional[str] = ..., provider: _Optional[_Union[Provider, _Mapping]] = ..., order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class RedeemRequest(_message.Message):
    __slots__ = ("code", "provider", "order")
    CODE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    code: str
    provider: Provider
    order: Order
    def __init__(self, code: _Optional[str] = ..., provider: _Optional[_Union[Provider, _Mapping]] = ..., order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class CaptureRequest(_message.Message):
    __slots__ = ("hold_id", "amount_fen")
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    amount_fen: int
    def __init__(self, hold_id: _Optional[str] = ..., amount_fen: _Optional[int] = ...) -> None: ...

class VoidRequest(_message.Message):
    __slots__ = ("hold_id",)
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    def __init__(self, hold_id: _Optional[str] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ("request_message_id",)
    REQUEST_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    request_message_id: str
    def __init__(self, request_message_id: _Optional[str] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("request_message_id", "request_type", "hold_id", "voucher_id", "state", "amount_fen", "captured_fen", "ratio_bp", "expires_at_ms", "order_id", "provider_id", "decided_at_ms", "settlement_window", "unknown", "holder_uscc")
    REQUEST_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TYPE_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    VOUCHER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_FEN_FIELD_NUMBER: _ClassVar[int]
    RATIO_BP_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENT_WINDOW_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    HOLDER_USCC_FIELD_NUMBER: _ClassVar[int]
    request_message_id: str
    request_type: MessageType
    hold_id: str
    voucher_id: str
    state: str
    amount_fen: int
    captured_fen: int
    ratio_bp: int
    expires_at_ms: int
    order_id: str
    provider_id: str
    decided_at_ms: int
    settlement_window: str
    unknown: bool
    holder_uscc: str
    def __init__(self, request_message_id: _Optional[str] = ..., request_type: _Optional[_Union[MessageType, str]] = ..., hold_id: _Optional[str] = ..., voucher_id: _Optional[str] = ..., state: _Optional[str] = ..., amount_fen: _Optional[int] = ..., captured_fen: _Optional[int] = ..., ratio_bp: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., order_id: _Optional[str] = ..., provider_id: _Optional[str] = ..., decided_at_ms: _Optional[int] = ..., settlement_window: _Optional[str] = ..., unknown: _Optional[bool] = ..., holder_uscc: _Optional[str] = ...) -> None: ...

class Refusal(_message.Message):
    __slots__ = ("request_message_id", "code", "message")
    REQUEST_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    request_message_id: str
    code: str
    message: str
    def __init__(self, request_message_id: _Optional[str] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Key(_message.Message):
    __slots__ = ("key_id", "public_key", "not_before_ms", "not_after_ms", "revoked")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_MS_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    public_key: bytes
    not_before_ms: int
    not_after_ms: int
    revoked: bool
    def __init__(self, key_id: _Optional[str] = ..., public_key: _Optional[bytes] = ..., not_before_ms: _Optional[int] = ..., not_after_ms: _Optional[int] = ..., revoked: _Optional[bool] = ...) -> None: ...

class NodeCard(_message.Message):
    __slots__ = ("region", "name", "endpoint", "keys", "issued_at_ms", "endpoints")
    REGION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    region: str
    name: str
    endpoint: str
    keys: _containers.RepeatedCompositeFieldContainer[Key]
    issued_at_ms: int
    endpoints: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, region: _Optional[str] = ..., name: _Optional[str] = ..., endpoint: _Optional[str] = ..., keys: _Optional[_Iterable[_Union[Key, _Mapping]]] = ..., issued_at_ms: _Optional[int] = ..., endpoints: _Optional[_Iterable[str]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("request_message_id",)
    REQUEST_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    request_message_id: str
    def __init__(self, request_message_id: _Optional[str] = ...) -> None: ...

class CardQuery(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatementRecord(_message.Message):
    __slots__ = ("issuer_hold_id", "provider_id", "order_id", "captured_fen")
    ISSUER_HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_FEN_FIELD_NUMBER: _ClassVar[int]
    issuer_hold_id: str
    provider_id: str
    order_id: str
    captured_fen: int
    def __init__(self, issuer_hold_id: _Optional[str] = ..., provider_id: _Optional[str] = ..., order_id: _Optional[str] = ..., captured_fen: _Optional[int] = ...) -> None: ...

class StatementRequest(_message.Message):
    __slots__ = ("statement", "acquirer_signature", "acquirer_key_id", "records", "records_omitted")
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    ACQUIRER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    ACQUIRER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_OMITTED_FIELD_NUMBER: _ClassVar[int]
    statement: bytes
    acquirer_signature: bytes
    acquirer_key_id: str
    records: _containers.RepeatedCompositeFieldContainer[StatementRecord]
    records_omitted: bool
    def __init__(self, statement: _Optional[bytes] = ..., acquirer_signature: _Optional[bytes] = ..., acquirer_key_id: _Optional[str] = ..., records: _Optional[_Iterable[_Union[StatementRecord, _Mapping]]] = ..., records_omitted: _Optional[bool] = ...) -> None: ...

class WindowClosed(_message.Message):
    __slots__ = ("window", "closed_at_ms")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    window: str
    closed_at_ms: int
    def __init__(self, window: _Optional[str] = ..., closed_at_ms: _Optional[int] = ...) -> None: ...

class CoveredStatement(_message.Message):
    __slots__ = ("issuer", "acquirer", "window", "total_fen", "digest")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    ACQUIRER_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FEN_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    issuer: str
    acquirer: str
    window: str
    total_fen: int
    digest: str
    def __init__(self, issuer: _Optional[str] = ..., acquirer: _Optional[str] = ..., window: _Optional[str] = ..., total_fen: _Optional[int] = ..., digest: _Optional[str] = ...) -> None: ...

class TransferAdvice(_message.Message):
    __slots__ = ("transfer_id", "payer", "payee", "amount_fen", "value_date", "reference", "netting_id", "statements")
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    PAYER_FIELD_NUMBER: _ClassVar[int]
    PAYEE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    VALUE_DATE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    NETTING_ID_FIELD_NUMBER: _ClassVar[int]
    STATEMENTS_FIELD_NUMBER: _ClassVar[int]
    transfer_id: str
    payer: str
    payee: str
    amount_fen: int
    value_date: str
    reference: str
    netting_id: str
    statements: _containers.RepeatedCompositeFieldContainer[CoveredStatement]
    def __init__(self, transfer_id: _Optional[str] = ..., payer: _Optional[str] = ..., payee: _Optional[str] = ..., amount_fen: _Optional[int] = ..., value_date: _Optional[str] = ..., reference: _Optional[str] = ..., netting_id: _Optional[str] = ..., statements: _Optional[_Iterable[_Union[CoveredStatement, _Mapping]]] = ...) -> None: ...

class ReceiptConfirmation(_message.Message):
    __slots__ = ("transfer_id", "payer", "payee", "amount_fen", "netting_id", "confirmed", "reason")
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    PAYER_FIELD_NUMBER: _ClassVar[int]
    PAYEE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    NETTING_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    transfer_id: str
    payer: str
    payee: str
    amount_fen: int
    netting_id: str
    confirmed: bool
    reason: str
    def __init__(self, transfer_id: _Optional[str] = ..., payer: _Optional[str] = ..., payee: _Optional[str] = ..., amount_fen: _Optional[int] = ..., netting_id: _Optional[str] = ..., confirmed: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class StatementReply(_message.Message):
    __slots__ = ("agreed", "issuer_signature", "issuer_key_id", "code", "issuer_records", "closes_at_ms", "records_omitted", "issuer_statement", "agreed_statement")
    AGREED_FIELD_NUMBER: _ClassVar[int]
    ISSUER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    ISSUER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    ISSUER_RECORDS_FIELD_NUMBER: _ClassVar[int]
    CLOSES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_OMITTED_FIELD_NUMBER: _ClassVar[int]
    ISSUER_STATEMENT_FIELD_NUMBER: _ClassVar[int]
    AGREED_STATEMENT_FIELD_NUMBER: _ClassVar[int]
    agreed: bool
    issuer_signature: bytes
    issuer_key_id: str
    code: str
    issuer_records: _containers.RepeatedCompositeFieldContainer[StatementRecord]
    closes_at_ms: int
    records_omitted: bool
    issuer_statement: bytes
    agreed_statement: SignedStatement
    def __init__(self, agreed: _Optional[bool] = ..., issuer_signature: _Optional[bytes] = ..., issuer_key_id: _Optional[str] = ..., code: _Optional[str] = ..., issuer_records: _Optional[_Iterable[_Union[StatementRecord, _Mapping]]] = ..., closes_at_ms: _Optional[int] = ..., records_omitted: _Optional[bool] = ..., issuer_statement: _Optional[bytes] = ..., agreed_statement: _Optional[_Union[SignedStatement, _Mapping]] = ...) -> None: ...

class SignedStatement(_message.Message):
    __slots__ = ("statement", "acquirer_signature", "acquirer_key_id", "issuer_signature", "issuer_key_id")
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    ACQUIRER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    ACQUIRER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    ISSUER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    statement: bytes
    acquirer_signature: bytes
    acquirer_key_id: str
    issuer_signature: bytes
    issuer_key_id: str
    def __init__(self, statement: _Optional[bytes] = ..., acquirer_signature: _Optional[bytes] = ..., acquirer_key_id: _Optional[str] = ..., issuer_signature: _Optional[bytes] = ..., issuer_key_id: _Optional[str] = ...) -> None: ...

class StatementsRequest(_message.Message):
    __slots__ = ("until_ms", "after", "limit")
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    until_ms: int
    after: str
    limit: int
    def __init__(self, until_ms: _Optional[int] = ..., after: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class StatementsReply(_message.Message):
    __slots__ = ("statements", "next")
    STATEMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    statements: _containers.RepeatedCompositeFieldContainer[SignedStatement]
    next: str
    def __init__(self, statements: _Optional[_Iterable[_Union[SignedStatement, _Mapping]]] = ..., next: _Optional[str] = ...) -> None: ...

class Batch(_message.Message):
    __slots__ = ("envelopes", "id")
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    envelopes: _containers.RepeatedScalarFieldContainer[bytes]
    id: int
    def __init__(self, envelopes: _Optional[_Iterable[bytes]] = ..., id: _Optional[int] = ...) -> None: ...

class Answer(_message.Message):
    __slots__ = ("reply", "code", "message")
    REPLY_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    reply: bytes
    code: str
    message: str
    def __init__(self, reply: _Optional[bytes] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Answers(_message.Message):
    __slots__ = ("answers", "id")
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    answers: _containers.RepeatedCompositeFieldContainer[Answer]
    id: int
    def __init__(self, answers: _Optional[_Iterable[_Union[Answer, _Mapping]]] = ..., id: _Optional[int] = ...) -> None: ...

class Offer(_message.Message):
    __slots__ = ("origin", "offer_id", "seq", "version", "withdrawn", "provider", "compute_class", "accelerator", "cards", "price_fen", "min_card_hours", "available_from_ms", "available_until_ms", "expires_at_ms", "data_centre_region", "domestic_chips", "security_level", "contact", "published_at_ms")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWN_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_CLASS_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_FIELD_NUMBER: _ClassVar[int]
    CARDS_FIELD_NUMBER: _ClassVar[int]
    PRICE_FEN_FIELD_NUMBER: _ClassVar[int]
    MIN_CARD_HOURS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FROM_MS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DATA_CENTRE_REGION_FIELD_NUMBER: _ClassVar[int]
    DOMESTIC_CHIPS_FIELD_NUMBER: _ClassVar[int]
    SECURITY_LEVEL_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    origin: str
    offer_id: str
    seq: int
    version: int
    withdrawn: bool
    provider: Provider
    compute_class: str
    accelerator: str
    cards: int
    price_fen: int
    min_card_hours: int
    available_from_ms: int
    available_until_ms: int
    expires_at_ms: int
    data_centre_region: str
    domestic_chips: bool
    security_level: int
    contact: str
    published_at_ms: int
    def __init__(self, origin: _Optional[str] = ..., offer_id: _Optional[str] = ..., seq: _Optional[int] = ..., version: _Optional[int] = ..., withdrawn: _Optional[bool] = ..., provider: _Optional[_Union[Provider, _Mapping]] = ..., compute_class: _Optional[str] = ..., accelerator: _Optional[str] = ..., cards: _Optional[int] = ..., price_fen: _Optional[int] = ..., min_card_hours: _Optional[int] = ..., available_from_ms: _Optional[int] = ..., available_until_ms: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., data_centre_region: _Optional[str] = ..., domestic_chips: _Optional[bool] = ..., security_level: _Optional[int] = ..., contact: _Optional[str] = ..., published_at_ms: _Optional[int] = ...) -> None: ...

class SignedOffer(_message.Message):
    __slots__ = ("offer", "key_id", "signature", "origin")
    OFFER_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    offer: bytes
    key_id: str
    signature: bytes
    origin: str
    def __init__(self, offer: _Optional[bytes] = ..., key_id: _Optional[str] = ..., signature: _Optional[bytes] = ..., origin: _Optional[str] = ...) -> None: ...

class OriginMark(_message.Message):
    __slots__ = ("origin", "after", "through")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    THROUGH_FIELD_NUMBER: _ClassVar[int]
    origin: str
    after: int
    through: int
    def __init__(self, origin: _Optional[str] = ..., after: _Optional[int] = ..., through: _Optional[int] = ...) -> None: ...

class OfferBatch(_message.Message):
    __slots__ = ("offers", "marks", "more")
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    MARKS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    offers: _containers.RepeatedCompositeFieldContainer[SignedOffer]
    marks: _containers.RepeatedCompositeFieldContainer[OriginMark]
    more: bool
    def __init__(self, offers: _Optional[_Iterable[_Union[SignedOffer, _Mapping]]] = ..., marks: _Optional[_Iterable[_Union[OriginMark, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...

class OfferQuery(_message.Message):
    __slots__ = ("have", "limit")
    HAVE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    have: _containers.RepeatedCompositeFieldContainer[OriginMark]
    limit: int
    def __init__(self, have: _Optional[_Iterable[_Union[OriginMark, _Mapping]]] = ..., limit: _Optional[int] = ...) -> None: ...

class OrderRequest(_message.Message):
    __slots__ = ("request_id", "offer_id", "offer_version", "card_hours", "amount_fen", "holder_id", "holder_name", "holder_uscc", "note")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_VERSION_FIELD_NUMBER: _ClassVar[int]
    CARD_HOURS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    HOLDER_ID_FIELD_NUMBER: _ClassVar[int]
    HOLDER_NAME_FIELD_NUMBER: _ClassVar[int]
    HOLDER_USCC_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    offer_id: str
    offer_version: int
    card_hours: int
    amount_fen: int
    holder_id: str
    holder_name: str
    holder_uscc: str
    note: str
    def __init__(self, request_id: _Optional[str] = ..., offer_id: _Optional[str] = ..., offer_version: _Optional[int] = ..., card_hours: _Optional[int] = ..., amount_fen: _Optional[int] = ..., holder_id: _Optional[str] = ..., holder_name: _Optional[str] = ..., holder_uscc: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class OrderAnswer(_message.Message):
    __slots__ = ("request_id", "accepted", "order_id", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    accepted: bool
    order_id: str
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., accepted: _Optional[bool] = ..., order_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
