"""Compute offers at the door (issue 20): OFFERS and OFFER_QUERY from a fake peer city whose
key is pre-loaded (hand-made signed envelopes, every bad one included), and what a relay's
marks may and may not make a node believe."""

from __future__ import annotations

import dataclasses
from typing import Any

from federation.convert import offer_message
from federation.envelope import seal
from federation.offers import OFFER_TAG
from federation.proto.v1 import federation_pb2 as pb
from node.domain.offers import Offer, Signed
from node.keys import NodeKey, verify
from node.services.common import SYSTEM, Principal
from tests.conftest import PROVIDER_A, snapshot
from tests.fakepeer import OLD_KEY, PEER, PEER_KEY, STRANGER, Rig, reply_of
from tests.test_catalog import DAY, terms


def signed(o: Offer, key: NodeKey = PEER_KEY, origin: str = PEER) -> pb.SignedOffer:
    record = offer_message(o).SerializeToString(deterministic=True)
    return pb.SignedOffer(
        offer=record, key_id=key.key_id, signature=key.sign(OFFER_TAG, record), origin=origin
    )


def gy_offer(rig: Rig, offer_id: str, seq: int, **over: Any) -> Offer:
    withdrawn = over.pop("withdrawn", False)
    t = dataclasses.replace(
        terms(),
        available_from=rig.now(),
        available_until=rig.now() + 30 * DAY,
        expires_at=rig.now() + 30 * DAY,
    )
    t = dataclasses.replace(t, **over)
    return Offer(
        PEER, offer_id, seq, seq, withdrawn, "p_gy", "GY centre", "computing_centre", t, rig.now()
    )


def push(
    rig: Rig,
    offers: list[pb.SignedOffer],
    after: int,
    through: int,
    mid: str,
    key: NodeKey = PEER_KEY,
) -> bytes:
    batch = pb.OfferBatch(
        offers=offers, marks=[pb.OriginMark(origin=PEER, after=after, through=through)]
    )
    return seal(key, PEER, "330100", mid, pb.OFFERS, batch.SerializeToString(), rig.now())


async def held(rig: Rig) -> dict[str, tuple[int, int, bool]]:
    rows = await rig.node.db.read(
        "t",
        lambda c: c.execute(
            "SELECT offer_id, seq, price_fen, withdrawn FROM catalog_offers WHERE origin = ?",
            (PEER,),
        ).fetchall(),
    )
    return {r[0]: (int(r[1]), int(r[2]), bool(r[3])) for r in rows}


async def test_a_peer_pushes_its_offers_and_only_newer_versions_replace_older(rig: Rig) -> None:
    one, two = gy_offer(rig, "of_a", 1), gy_offer(rig, "of_b", 2, price_fen=3_000)
    reply = await rig.send(push(rig, [signed(one), signed(two)], 0, 2, "o-1"), "Offers")
    header, payload = reply_of(rig, reply)
    assert header.type == pb.OFFERS_REPLY and header.in_reply_to == "o-1"
    marks = pb.OfferBatch.FromString(payload).marks
    assert [(m.origin, m.through) for m in marks] == [(PEER, 2)]
    assert await held(rig) == {"of_a": (1, 2_500, False), "of_b": (2, 3_000, False)}
    # A new version of of_a, then a replay of the old one: the old one is not applied.
    newer_a = gy_offer(rig, "of_a", 3, price_fen=2_000)
    await rig.send(push(rig, [signed(newer_a)], 2, 3, "o-2"), "Offers")
    await rig.send(push(rig, [signed(one)], 0, 1, "o-3"), "Offers")
    assert (await held(rig))["of_a"] == (3, 2_000, False)
    # A withdrawal, and a replay of the version before it.
    await rig.send(
        push(rig, [signed(gy_offer(rig, "of_a", 4, withdrawn=True))], 3, 4, "o-4"), "Offers"
    )
    await rig.send(push(rig, [signed(newer_a)], 2, 3, "o-5"), "Offers")
    assert (await held(rig))["of_a"] == (4, 2_500, True)
    # The same envelope again is harmless: the same marks come back.
    again = await rig.send(push(rig, [signed(newer_a)], 2, 3, "o-5"), "Offers")
    assert pb.OfferBatch.FromString(reply_of(rig, again)[1]).marks[0].through == 4


async def test_a_gap_is_not_covered_until_it_is_filled(rig: Rig) -> None:
    # Changes 1-2 were lost; 3 arrives: kept, but the node holds GY only through 0.
    reply = await rig.send(push(rig, [signed(gy_offer(rig, "of_c", 3))], 2, 3, "g-1"), "Offers")
    assert pb.OfferBatch.FromString(reply_of(rig, reply)[1]).marks[0].through == 0
    reply = await rig.send(
        push(
            rig, [signed(gy_offer(rig, "of_a", 1)), signed(gy_offer(rig, "of_b", 2))], 0, 2, "g-2"
        ),
        "Offers",
    )
    # 1-2 fill the gap: complete through 2 (3 is held, but its mark came while the gap was
    # open); the node asks GY for the rest at once, and the next push covers it too.
    assert pb.OfferBatch.FromString(reply_of(rig, reply)[1]).marks[0].through == 2
    reply = await rig.send(push(rig, [signed(gy_offer(rig, "of_c", 3))], 2, 3, "g-3"), "Offers")
    assert pb.OfferBatch.FromString(reply_of(rig, reply)[1]).marks[0].through == 3


async def test_forged_and_foreign_offers_are_refused_at_the_door(rig: Rig) -> None:
    before = snapshot(rig.node)
    good = gy_offer(rig, "of_a", 1)
    # Signed by a key GY does not have: the whole message is refused.
    await rig.refused(push(rig, [signed(good, STRANGER)], 0, 1, "f-1"), "offer_invalid", "Offers")
    # A signature over other bytes.
    forged = signed(good)
    forged.offer = offer_message(
        dataclasses.replace(good, terms=terms(price_fen=1))
    ).SerializeToString()
    await rig.refused(push(rig, [forged], 0, 1, "f-2"), "offer_invalid", "Offers")
    # An offer whose record names another origin than its signer.
    hz = dataclasses.replace(good, origin="330100")
    await rig.refused(push(rig, [signed(hz)], 0, 1, "f-3"), "offer_invalid", "Offers")
    # OFFERS carries only the sender's own: an offer said to be of another city is refused.
    await rig.refused(
        push(rig, [signed(good, origin="370200")], 0, 1, "f-4"), "malformed_message", "Offers"
    )
    # Bad terms, signed properly.
    await rig.refused(
        push(rig, [signed(gy_offer(rig, "of_a", 1, cards=0))], 0, 1, "f-5"),
        "offer_invalid",
        "Offers",
    )
    await rig.refused(
        push(rig, [signed(dataclasses.replace(good, offer_id="x"))], 0, 1, "f-6"),
        "offer_invalid",
        "Offers",
    )
    # A payload that is not an OfferBatch; an envelope signed by a stranger.
    junk = seal(PEER_KEY, PEER, "330100", "f-7", pb.OFFERS, b"\xff\xff", rig.now())
    await rig.refused(junk, "malformed_message", "Offers")
    await rig.refused(
        push(rig, [signed(good)], 0, 1, "f-8", key=STRANGER), "unknown_signer", "Offers"
    )
    # A stale send time (a replay from long ago) is refused as any other message is.
    old = pb.OfferBatch(offers=[signed(good)]).SerializeToString()
    stale = seal(PEER_KEY, PEER, "330100", "f-9", pb.OFFERS, old, rig.now() - 3_600_000)
    await rig.refused(stale, "clock_skew", "Offers")
    # A message type the method does not carry.
    await rig.refused(
        seal(PEER_KEY, PEER, "330100", "f-10", pb.CARD, b"", rig.now()),
        "wrong_message_type",
        "Offers",
    )
    assert await held(rig) == {}
    assert snapshot(rig.node) == before
    # Signed by GY's older key (it ended a second ago): not for an offer published now...
    await rig.refused(push(rig, [signed(good, OLD_KEY)], 0, 1, "f-11"), "offer_invalid", "Offers")
    # ... but taken for one it signed while it was valid (a rotation does not void offers).
    earlier = dataclasses.replace(good, published_at=rig.now() - 2_000)
    await rig.send(push(rig, [signed(earlier, OLD_KEY)], 0, 1, "f-12"), "Offers")
    assert await held(rig) == {"of_a": (1, 2_500, False)}


async def test_a_peer_asks_for_what_it_missed(rig: Rig) -> None:
    node = rig.node
    # This city's own offers, published by one of its providers through the service.
    p, _ = await node.registry.register_provider(
        SYSTEM, PROVIDER_A, "HZ centre", "computing_centre", None, (), True
    )
    who = Principal("provider", p.id, "t")
    t = dataclasses.replace(
        terms(),
        available_from=rig.now(),
        available_until=rig.now() + 30 * DAY,
        expires_at=rig.now() + 30 * DAY,
    )
    ids = [(await node.catalog.publish(who, t)).offer_id for _ in range(3)]
    await node.catalog.withdraw(who, ids[0])
    # GY's own offers are held too, through 1.
    await rig.send(push(rig, [signed(gy_offer(rig, "of_a", 1))], 0, 1, "q-0"), "Offers")

    async def ask(have: dict[str, int], limit: int, mid: str) -> pb.OfferBatch:
        query = pb.OfferQuery(
            have=[pb.OriginMark(origin=o, after=a) for o, a in have.items()], limit=limit
        )
        env = seal(
            PEER_KEY, PEER, "330100", mid, pb.OFFER_QUERY, query.SerializeToString(), rig.now()
        )
        return pb.OfferBatch.FromString(reply_of(rig, await rig.send(env, "Offers"))[1])

    reply = await ask({"330100": 0, PEER: 0, "999999": 0}, 100, "q-1")
    # Hangzhou's current versions after 0 (3 offers; the withdrawn one as its withdrawal, 4),
    # by number, then GY's own: each signed by its origin.
    got = [
        (pb.Offer.FromString(s.offer).origin, pb.Offer.FromString(s.offer).seq)
        for s in reply.offers
    ]
    assert got == [("330100", 2), ("330100", 3), ("330100", 4), (PEER, 1)]
    assert [(m.origin, m.after, m.through) for m in reply.marks] == [("330100", 0, 4), (PEER, 0, 1)]
    assert not reply.more
    hz = reply.offers[0]
    assert hz.key_id == node.key.key_id and hz.origin == "330100"
    assert verify(node.key.public_key, OFFER_TAG, hz.offer, hz.signature)
    # Only what is newer than asked, and a limit that cuts the answer short says so.
    reply = await ask({"330100": 3}, 100, "q-2")
    assert [pb.Offer.FromString(s.offer).seq for s in reply.offers] == [4]
    reply = await ask({"330100": 0}, 2, "q-3")
    assert [pb.Offer.FromString(s.offer).seq for s in reply.offers] == [2, 3]
    assert reply.more and [(m.after, m.through) for m in reply.marks] == [(0, 3)]


async def test_a_relay_cannot_vouch_for_changes_its_origin_never_signed(rig: Rig) -> None:
    """Anti-entropy takes a relay's mark for another origin only up to the highest change of
    that origin this node holds signed: a lying relay cannot make it skip changes."""
    from node.services.catalog import Mark
    from node.store.catalog import mark_of

    node = rig.node
    qd = dataclasses.replace(gy_offer(rig, "of_q", 3), origin="370200")
    qd_signed = Signed(qd, b"record", "k", b"sig")
    # Guiyang, as a relay, claims Qingdao's changes through a million, bringing none.
    await node.catalog.apply([], [Mark("370200", 0, 10**6)], lambda o: True, sender=PEER)
    assert await node.db.read("t", lambda c: mark_of(c, "370200")) == (0, 0)
    # Bringing one, signed (number 3): the mark goes no further than 3.
    await node.catalog.apply([qd_signed], [Mark("370200", 0, 10**6)], lambda o: True, sender=PEER)
    assert await node.db.read("t", lambda c: mark_of(c, "370200")) == (3, 3)
    # Qingdao itself is believed about its own changes.
    await node.catalog.apply([], [Mark("370200", 3, 9)], lambda o: True, sender="370200")
    assert (await node.db.read("t", lambda c: mark_of(c, "370200")))[0] == 9
