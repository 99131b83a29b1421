"""The signing envelope: sign exact bytes, verify before parsing, one door for every message.

A message is an ``Envelope`` holding the exact bytes of a ``Body`` and an Ed25519 signature
over ``TAG || body``. Protobuf serialization is not canonical, so nothing is ever
re-serialized to be verified: the receiver checks the signature over the bytes it received,
and only then parses them.

``Door.open`` performs every check, in this order, each with its own error code:

1. ``unknown_signer``   the signer region is not an imported peer, the key id is not one of
                        that peer's keys, or the signature does not verify over TAG || body
                        with that key: one code and one sentence for the three, so that a
                        caller who has proven nothing learns nothing about the peer list
                        (which one it was goes to this node's log and metrics only)
2. ``key_revoked``      the key was revoked (said only to a caller whose signature verified)
3. ``key_expired``      now is outside the key's validity period (likewise)
4. ``malformed_message`` the verified bytes are not a Body, or the header is incomplete
5. ``origin_mismatch``  header.origin is not the signer region
6. ``wrong_destination`` header.destination is not this node
7. ``wrong_message_type`` header.type is not what this RPC carries
8. ``clock_skew``      header.sent_at is further than the allowed skew from now (requests)

A known message id with a different payload (``modified_replay``) is refused by the
receiver's inbox, which is where message ids are remembered.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from federation.proto.v1 import federation_pb2 as pb
from node import errors
from node.domain.fields import CONTROL
from node.domain.model import Peer
from node.keys import NodeKey, verify

TAG = b"suanli/federation/v1\x00"
MAX_ID = 128  # message ids (this node sends m_ + 16 hex digits; a UUID fits)

PeerLookup = Callable[[str], Peer | None]


# The unsigned trace field's shape; anything else is dropped (it only ever reaches a log line).
TRACE_OK = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # as a REST X-Request-Id


@dataclass(frozen=True)
class Opened:
    """A verified message: its header, its payload bytes and their SHA-256."""

    header: pb.Header
    payload: bytes
    payload_sha256: str
    raw: bytes  # the envelope exactly as received, kept as evidence
    trace: str = ""  # the sender's request id, unsigned, for logs only ("" if none or odd)


def seal(
    key: NodeKey,
    origin: str,
    destination: str,
    message_id: str,
    kind: int,
    payload: bytes,
    sent_at_ms: int,
    in_reply_to: str = "",
    trace: str = "",
) -> bytes:
    """Sign a payload for ``destination``; returns the serialized Envelope. ``trace``, the
    request id the message serves, travels beside the signed body (for logs only)."""
    header = pb.Header(
        origin=origin,
        destination=destination,
        message_id=message_id,
        sent_at_ms=sent_at_ms,
        type=kind,  # type: ignore[arg-type]
        in_reply_to=in_reply_to,
    )
    body = pb.Body(header=header, payload=payload).SerializeToString(deterministic=True)
    envelope = pb.Envelope(
        body=body,
        signer_region=origin,
        key_id=key.key_id,
        signature=key.sign(TAG, body),
        trace=trace if TRACE_OK.fullmatch(trace) else "",
    )
    return envelope.SerializeToString(deterministic=True)


# A key no one holds (the public half of a fixed seed): an envelope whose signer or key is
# unknown is checked against it all the same, so that the refusal takes as long as a bad
# signature's and its timing does not tell a stranger which regions and keys are known here.
_DECOY = NodeKey(b"suanli/decoy/key/for/timing/\x00\x00\x00\x00").public_key


def _decoy(envelope: pb.Envelope) -> None:
    verify(_DECOY, TAG, envelope.body, envelope.signature)


class Door:
    """Verifies envelopes addressed to this node."""

    def __init__(self, region: str, peers: PeerLookup, max_skew_ms: int) -> None:
        self.region = region
        self._peers = peers
        self.max_skew_ms = max_skew_ms

    def open(
        self,
        message: bytes,
        expect: tuple[int, ...],
        now_ms: int,
        check_skew: bool = True,
    ) -> Opened:
        raw = message  # the bytes as received: what was signed is checked as it came
        try:
            envelope = pb.Envelope.FromString(raw)
        except DecodeError:
            raise errors.MalformedMessage("the envelope is not a valid Envelope message") from None
        peer = self._peers(envelope.signer_region)
        if peer is None:
            _decoy(envelope)
            raise errors.UnknownSigner(
                "unknown_origin", f"{envelope.signer_region[:40]!r} is not a peer"
            )
        key = next((k for k in peer.keys if k.key_id == envelope.key_id), None)
        if key is None:
            _decoy(envelope)
            raise errors.UnknownSigner(
                "unknown_key", f"{peer.region} has no key {envelope.key_id[:40]!r} known here"
            )
        if not verify(key.public_key, TAG, envelope.body, envelope.signature):
            raise errors.UnknownSigner(
                "bad_signature",
                f"the signature does not verify with key {key.key_id} of {peer.region}",
            )
        # The caller holds the key: it may learn that key's standing.
        if key.revoked:
            raise errors.KeyRevoked(f"key {key.key_id} of {peer.region} was revoked")
        if not key.valid_at(now_ms):
            raise errors.KeyExpired(f"key {key.key_id} of {peer.region} is not valid now")
        try:
            body = pb.Body.FromString(envelope.body)
        except DecodeError:
            raise errors.MalformedMessage("the signed body is not a valid Body message") from None
        header = body.header
        if not header.message_id or not header.origin:
            raise errors.MalformedMessage("the header needs an origin and a message id")
        for name, value in (("message_id", header.message_id), ("in_reply_to", header.in_reply_to)):
            if len(value) > MAX_ID or CONTROL.search(value):
                raise errors.MalformedMessage(
                    f"header.{name}: at most {MAX_ID} characters, no control characters"
                )
        if header.origin != envelope.signer_region:
            raise errors.OriginMismatch(
                f"signed by {envelope.signer_region} but claims origin {header.origin}"
            )
        if header.destination != self.region:
            raise errors.WrongDestination(
                f"addressed to {header.destination!r}, this node is {self.region}"
            )
        if header.type not in expect:
            names = ", ".join(pb.MessageType.Name(t) for t in expect)
            raise errors.WrongMessageType(
                f"expected {names}, got {pb.MessageType.Name(header.type)}"
            )
        if check_skew and abs(now_ms - header.sent_at_ms) > self.max_skew_ms:
            raise errors.ClockSkew(
                f"sent at {header.sent_at_ms}, {abs(now_ms - header.sent_at_ms)} ms from now; "
                f"at most {self.max_skew_ms} ms allowed"
            )
        trace = envelope.trace if TRACE_OK.fullmatch(envelope.trace) else ""
        return Opened(header, body.payload, hashlib.sha256(body.payload).hexdigest(), raw, trace)
