"""Node cards: who a node is, where it listens, and which keys it signs with.

A card is a ``NodeCard`` sealed in an Envelope of type CARD, addressed to nobody (destination
""), signed by one of the keys it lists: possession of the key is proved, and the operator who
imports it compares the fingerprint with the peer's operator over another channel (phone,
letter) before trusting it. Cards travel as text files: the envelope in base64.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from federation.envelope import TAG, seal
from federation.proto.v1 import federation_pb2 as pb
from node import errors
from node.domain.fields import endpoints_problem, is_region
from node.domain.model import OwnKey, Peer, PeerKey
from node.keys import NodeKey, verify


def fingerprint(region: str, keys: list[tuple[str, bytes]]) -> str:
    """SHA-256 over the region and its keys, shown in groups of four hex digits."""
    digest = hashlib.sha256(region.encode())
    for key_id, public in sorted(keys):
        digest.update(key_id.encode() + public)
    hexed = digest.hexdigest()[:32]
    return " ".join(hexed[i : i + 4] for i in range(0, 32, 4))


def card_payload(
    region: str, name: str, endpoints: Sequence[str], keys: list[OwnKey], now_ms: int
) -> bytes:
    """The serialized NodeCard: carried by card files and by PushCard alike. ``endpoint`` is
    the first endpoint; ``endpoints`` lists them all when there are several (a card with one
    is byte for byte what it was before the field existed)."""
    if isinstance(endpoints, str):  # a str is a Sequence[str] too: one endpoint, in a tuple
        raise TypeError("endpoints: a sequence of host:port strings, not one string")
    card = pb.NodeCard(
        region=region,
        name=name,
        endpoint=endpoints[0],
        endpoints=list(endpoints) if len(endpoints) > 1 else [],
        keys=[
            pb.Key(
                key_id=k.key_id,
                public_key=k.public_key,
                not_before_ms=k.not_before,
                not_after_ms=k.not_after,
                revoked=k.revoked,
            )
            for k in keys
        ],
        issued_at_ms=now_ms,
    )
    return card.SerializeToString(deterministic=True)


def build_card(
    key: NodeKey, region: str, name: str, endpoints: Sequence[str], keys: list[OwnKey], now_ms: int
) -> bytes:
    """A card file's envelope: addressed to nobody, signed by one of the keys it lists."""
    payload = card_payload(region, name, endpoints, keys, now_ms)
    return seal(key, region, "", f"card-{now_ms}", pb.CARD, payload, now_ms)


def card_text(envelope: bytes) -> str:
    return base64.b64encode(envelope).decode() + "\n"


@dataclass(frozen=True)
class ParsedCard:
    card: pb.NodeCard
    envelope: bytes
    fingerprint: str

    def peer(self, outbound: bool, inbound: bool, exposure_cap_fen: int) -> Peer:
        return Peer(
            region=self.card.region,
            name=self.card.name,
            endpoint=self.card.endpoint,
            fingerprint=self.fingerprint,
            outbound=outbound,
            inbound=inbound,
            exposure_cap_fen=exposure_cap_fen,
            keys=tuple(
                PeerKey(k.key_id, bytes(k.public_key), k.not_before_ms, k.not_after_ms, k.revoked)
                for k in self.card.keys
            ),
            endpoints=tuple(self.card.endpoints),
        )


def endpoints_of(card: pb.NodeCard) -> tuple[str, ...]:
    """The endpoints a card lists, in order, after checking them (MalformedMessage): its
    ``endpoints`` when set, whose first must be its ``endpoint``; else ``endpoint`` alone."""
    listed = tuple(card.endpoints) or (card.endpoint,)
    problem = endpoints_problem(listed)
    if problem is None and card.endpoints and card.endpoints[0] != card.endpoint:
        problem = "endpoints[0] is not endpoint"
    if problem is not None:
        raise errors.MalformedMessage(f"the card's endpoints: {problem}")
    return listed


def parse_card(data: bytes | str) -> ParsedCard:
    """Parse a card (base64 text or envelope bytes) and check it is signed by a key it lists."""
    try:
        # standard alphabet (RFC 4648 §4) with padding; whitespace around it is ignored, any
        # other character is refused
        raw = base64.b64decode(data.strip(), validate=True) if isinstance(data, str) else data
        envelope = pb.Envelope.FromString(raw)
        body = pb.Body.FromString(envelope.body)
        card = pb.NodeCard.FromString(body.payload)
    except (DecodeError, ValueError):
        raise errors.MalformedMessage("not a node card") from None
    if (
        body.header.type != pb.CARD
        or card.region != envelope.signer_region
        or body.header.origin != card.region
    ):
        raise errors.MalformedMessage("not a node card, or its regions disagree")
    if not is_region(card.region) or not card.endpoint:
        raise errors.MalformedMessage("a card needs a 6-digit region and an endpoint")
    endpoints_of(card)
    signer = next((k for k in card.keys if k.key_id == envelope.key_id), None)
    if signer is None or signer.revoked:
        raise errors.UnknownKey("the card is not signed by one of its own valid keys")
    if not verify(bytes(signer.public_key), TAG, envelope.body, envelope.signature):
        raise errors.BadSignature("the card's signature does not verify")
    for k in card.keys:
        if (
            hashlib.sha256(bytes(k.public_key)).hexdigest()[:16] != k.key_id
            or len(k.public_key) != 32
        ):
            raise errors.MalformedMessage(f"key {k.key_id} does not match its public key")
    keys = [(k.key_id, bytes(k.public_key)) for k in card.keys]
    return ParsedCard(card, raw, fingerprint(card.region, keys))
