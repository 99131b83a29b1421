"""The catalog of compute offers (issue 20): providers publish, every city keeps the current
version of every peer's offers, holders search it at the price after their own voucher.

This city is the only one that may publish, change or withdraw its providers' offers: each
change takes the city's next sequence number and is signed by the city's key (the port
``OfferSigner``; the record's bytes are the protocol's, docs/protocol.md §5d). A peer's offers
arrive verified by the federation (``federation/offers.py``); here they are kept when newer
than what is held, never otherwise, and the marks say through which number every change of
each origin is held, which is what anti-entropy asks by.
"""

from __future__ import annotations

import heapq
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from node import errors
from node.clock import Clock, year_of
from node.domain import offers as rules
from node.domain.money import apply_ratio
from node.domain.offers import Filters, Offer, Priced, Purse, Reach, Signed, Terms
from node.domain.policy import Policy
from node.domain.windows import window_of
from node.services.common import Principal, new_id, require_operator, require_role
from node.services.policies import PolicyBook
from node.store import catalog as store
from node.store import peers, registry
from node.store import vouchers as voucher_rows
from node.store.engine import Books

logger = logging.getLogger(__name__)

MAX_RESULTS = 200
ANALYZE_AFTER = 1_000
ANALYZE_EVERY_SECONDS = 3_600.0
MAX_BATCH_OFFERS = 500  # offers per OFFERS push or anti-entropy reply
SORTS = ("effective", "price")


class OfferSigner(Protocol):
    """Signs this city's offers as the protocol carries them (``federation/offers.py``)."""

    def sign(self, offer: Offer) -> Signed: ...


@dataclass(frozen=True)
class Mark:
    """For one origin: every offer whose current version is numbered in (after, through]."""

    origin: str
    after: int
    through: int


@dataclass(frozen=True)
class Applied:
    """What a batch of offers did here: how many were kept, how many were older than what
    is held (never applied), how many of origins this node cannot verify or must not take,
    and the marks this node holds now for the origins the batch named."""

    kept: int
    stale: int
    ignored: int
    marks: list[Mark]
    behind: list[str] = field(default_factory=list)  # origins with a gap: ask for them


@dataclass(frozen=True)
class Results:
    """A search: the offers priced for the holder, and what the holder's vouchers hold."""

    items: list[Priced]
    purses: dict[str, Purse]
    reach: Reach
    cap_left_fen: int | None = None  # what this year's cap still lets be issued; None: no policy


class Catalog:
    def __init__(
        self,
        db: Books,
        clock: Clock,
        region: str,
        policies: PolicyBook,
        signer: OfferSigner,
        changed: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._clock = clock
        self.region = region
        self._policies = policies
        self._signer = signer
        self.changed = changed  # told after this city's offers change (the publisher pushes)
        # The federation's countersigned statements, verified (the netting service's, set by
        # the composition root on a federated node): what cities captured from each other.
        self.agreed: Callable[[Principal], Awaitable[dict[str, Any]]] | None = None
        self._unanalyzed = 0  # changes since the planner's statistics were last refreshed
        self._analyzed_at = 0.0

    # This city's providers --------------------------------------------------------------

    async def publish(self, who: Principal, terms: Terms) -> Offer:
        provider_id = require_role(who, "provider")
        now = self._clock.now_ms()
        rules.check_terms(terms, self._policies.current().compute_classes, now)

        def txn(conn: sqlite3.Connection) -> Offer:
            provider = registry.get_provider(conn, provider_id)
            if not provider.approved:
                raise errors.ProviderNotApproved(
                    f"provider {provider.id} is {provider.state}: only an approved provider "
                    "may publish offers"
                )
            offer = Offer(
                origin=self.region,
                offer_id=new_id("of"),
                seq=self._next_seq_txn(conn),
                version=1,
                withdrawn=False,
                provider_id=provider.id,
                provider_name=provider.name,
                provider_kind=provider.kind,
                terms=terms,
                published_at=now,
            )
            return self._keep_own_txn(conn, offer, now)

        offer = await self._db.run("offer_publish", txn)
        self._unanalyzed += 1
        logger.info("offer %s published by %s (seq %d)", offer.offer_id, provider_id, offer.seq)
        self.changed()
        return offer

    async def change(self, who: Principal, offer_id: str, terms: Terms) -> Offer:
        provider_id = require_role(who, "provider")
        now = self._clock.now_ms()
        rules.check_terms(terms, self._policies.current().compute_classes, now)

        def txn(conn: sqlite3.Connection) -> Offer:
            current = self._own_offer_txn(conn, provider_id, offer_id)
            if not registry.get_provider(conn, provider_id).approved:
                raise errors.ProviderNotApproved("only an approved provider may change offers")
            return self._keep_own_txn(
                conn, current.changed(terms, self._next_seq_txn(conn), now), now
            )

        offer = await self._db.run("offer_change", txn)
        logger.info("offer %s changed to version %d (seq %d)", offer_id, offer.version, offer.seq)
        self.changed()
        return offer

    async def withdraw(self, who: Principal, offer_id: str) -> Offer:
        provider_id = require_role(who, "provider")
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> Offer:
            current = self._own_offer_txn(conn, provider_id, offer_id)
            return self._keep_own_txn(conn, current.withdrawal(self._next_seq_txn(conn), now), now)

        offer = await self._db.run("offer_withdraw", txn)
        logger.info("offer %s withdrawn (seq %d)", offer_id, offer.seq)
        self.changed()
        return offer

    async def own(self, who: Principal) -> list[Offer]:
        """This city's offers, withdrawn and expired ones included: a provider's own, or
        (an operator) every provider's."""
        if who.role == "provider":
            provider_id = require_role(who, "provider")
            return await self._db.read(
                "offers_of_provider",
                lambda c: store.offers_of_provider(c, self.region, provider_id),
            )
        require_operator(who)
        return await self._db.read(
            "offers_of_origin", lambda c: store.offers_of_origin(c, self.region)
        )

    async def sweep(self) -> int:
        """Withdraw the live offers of providers that are no longer approved (suspended):
        the catalog must not sell what a city no longer vouches for."""
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> int:
            done = 0
            for provider_id, state in store.own_providers_not_approved(conn, self.region, now):
                for offer in store.offers_of_provider(conn, self.region, provider_id):
                    if offer.live(now):
                        self._keep_own_txn(
                            conn, offer.withdrawal(self._next_seq_txn(conn), now), now
                        )
                        logger.info(
                            "offer %s withdrawn: its provider %s is %s",
                            offer.offer_id,
                            provider_id,
                            state,
                        )
                        done += 1
            return done

        done = await self._db.run("offers_sweep", txn)
        if done:
            self.changed()
        self._unanalyzed += done
        await self._analyze_if_due()
        return done

    async def _analyze_if_due(self) -> None:
        """Refresh the planner's statistics after many changes (1,000), or hourly after any:
        they are what makes it pick the most selective index for a search."""
        now = time.monotonic()
        if self._unanalyzed >= ANALYZE_AFTER or (
            self._unanalyzed and now - self._analyzed_at >= ANALYZE_EVERY_SECONDS
        ):
            self._unanalyzed, self._analyzed_at = 0, now
            await self._db.run("catalog_analyze", store.analyze)

    def _own_offer_txn(self, conn: sqlite3.Connection, provider_id: str, offer_id: str) -> Offer:
        offer = store.get_offer(conn, self.region, offer_id)
        if offer is None or offer.provider_id != provider_id:
            raise errors.OfferNotFound(f"no offer {offer_id[:70]!r} of this provider")
        if offer.withdrawn:
            raise errors.OfferWithdrawn(f"offer {offer_id} was withdrawn; publish a new one")
        return offer

    def _next_seq_txn(self, conn: sqlite3.Connection) -> int:
        return store.mark_of(conn, self.region)[0] + 1

    def _keep_own_txn(self, conn: sqlite3.Connection, offer: Offer, now: int) -> Offer:
        store.put_offer(conn, self._signer.sign(offer), now)
        store.set_mark(conn, self.region, offer.seq, offer.seq, now)
        return offer

    # Peers' offers ------------------------------------------------------------------------

    async def apply(
        self,
        signed: list[Signed],
        marks: list[Mark],
        verifiable: Callable[[str], bool],
        sender: str | None = None,
    ) -> Applied:
        """Keep the verified offers that are newer than what is held, then move each named
        origin's mark: a batch covering (after, through] completes an origin held through at
        least ``after``. ``verifiable``: whether an origin is one whose offers this node takes
        (a peer; never this city itself, whose offers only it makes).

        ``sender``: the city the batch came from. Its marks for its own offers are taken as
        they are; its marks for another origin's (a relay's, in anti-entropy) only up to the
        highest number of that origin's that this node holds signed: a relay can vouch for no
        change the origin has not signed, so a lying one cannot make this node (and, through
        its answers, the origin) believe it holds changes it was never given."""
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> Applied:
            kept = stale = ignored = 0
            by_origin: dict[str, list[Signed]] = {}
            for s in signed:
                if s.offer.origin == self.region or not verifiable(s.offer.origin):
                    ignored += 1
                else:
                    by_origin.setdefault(s.offer.origin, []).append(s)
            held = {o: store.mark_of(conn, o) for o in {*by_origin, *(m.origin for m in marks)}}
            for origin, batch in by_origin.items():
                seqs = store.current_seqs(conn, origin, (s.offer.offer_id for s in batch))
                complete, highest = held[origin]
                for s in sorted(batch, key=lambda s: s.offer.seq):
                    if s.offer.seq <= seqs.get(s.offer.offer_id, 0):
                        stale += 1
                        continue
                    store.put_offer(conn, s, now)
                    seqs[s.offer.offer_id] = s.offer.seq
                    highest = max(highest, s.offer.seq)
                    kept += 1
                held[origin] = (complete, highest)
            out: list[Mark] = []
            behind: list[str] = []
            for m in marks:
                if m.origin == self.region or not verifiable(m.origin):
                    continue
                complete, highest = held[m.origin]
                through = m.through
                if sender is not None and m.origin != sender:
                    through = min(through, store.max_seq(conn, m.origin))
                if complete >= m.after and through > complete:
                    complete = through
                held[m.origin] = (complete, max(highest, complete, through))
            for origin, (complete, highest) in held.items():
                if origin == self.region or not verifiable(origin):
                    continue
                store.set_mark(conn, origin, complete, highest, now)
                out.append(Mark(origin, 0, complete))
                if highest > complete:
                    behind.append(origin)
            return Applied(kept, stale, ignored, sorted(out, key=lambda m: m.origin), behind)

        applied = await self._db.run("offers_apply", txn)
        self._unanalyzed += applied.kept
        return applied

    async def since(
        self, have: dict[str, int], limit: int, origins: Iterable[str]
    ) -> tuple[list[Signed], list[Mark], bool]:
        """Anti-entropy's answer: for each of ``origins`` (this city and the peers the asker
        can verify), the current versions numbered after what the asker has, by origin and
        number, at most ``limit`` in all, and the marks they complete. True when the limit
        cut the answer short (the asker asks again)."""

        named = sorted(set(origins))

        def txn(conn: sqlite3.Connection) -> tuple[list[Signed], list[Mark], bool]:
            held = store.marks(conn, named)  # a push names one origin: read its mark only
            out: list[Signed] = []
            marks: list[Mark] = []
            for origin in named:
                complete = held.get(origin, (0, 0))[0]
                after = have.get(origin, 0)
                room = limit - len(out)
                if room <= 0:
                    return out, marks, True
                batch = store.signed_since(conn, origin, after, room + 1)
                cut = len(batch) > room
                batch = batch[:room]
                out.extend(batch)
                through = min(complete, batch[-1].offer.seq) if cut and batch else complete
                if through > after:
                    marks.append(Mark(origin, after, through))
                if cut:
                    return out, marks, True
            return out, marks, False

        return await self._db.read("offers_since", txn)

    async def own_since(self, after: int, limit: int) -> tuple[list[Signed], Mark | None]:
        """This city's changes after ``after`` for a push, and the mark they complete."""
        signed, marks, _ = await self.since({self.region: after}, limit, (self.region,))
        return signed, (marks[0] if marks else None)

    async def marks(self) -> dict[str, int]:
        """Per origin: through which number every change is held here."""
        held = await self._db.read("offer_marks", store.marks)
        return {origin: complete for origin, (complete, _) in held.items()}

    async def pushes(self) -> dict[str, int]:
        return await self._db.read("offer_pushes", store.pushes)

    async def pushed(self, peer: str, through: int) -> None:
        now = self._clock.now_ms()
        await self._db.run("offer_pushed", lambda c: store.set_pushed(c, peer, through, now))

    # Holders --------------------------------------------------------------------------------

    async def search(self, who: Principal, filters: Filters, sort: str, limit: int) -> Results:
        """The live offers matching ``filters``, each priced for the asking holder, cheapest
        first after the voucher (``sort`` effective) or by list price (``price``)."""
        holder_id = require_role(who, "holder")
        if sort not in SORTS:
            raise errors.InvalidRequest(f"sort: one of {', '.join(SORTS)}")
        limit = max(1, min(limit, MAX_RESULTS))
        now = self._clock.now_ms()
        try:  # the exposure caps count per settlement window, of the governing policy
            policy: Policy | None = self._policies.governing()
        except errors.PolicyMissing:
            policy = None

        def txn(conn: sqlite3.Connection) -> Results:
            owned = voucher_rows.spendable_vouchers(conn, holder_id, now)
            purse = rules.purses(owned, now)
            room = {} if policy is None else peers.outbound_room(conn, window_of(policy, now))
            reach = Reach(self.region, room)
            if sort == "price":
                found = store.cheapest(conn, filters, now, limit)
            else:
                found = _cheapest_after_txn(conn, filters, now, limit, purse, reach)
            items = [rules.price_after(o, purse, reach) for o in found]
            if sort == "effective":
                items.sort(key=_effective_key)
            return Results(items[:limit], purse, reach, self._cap_left_txn(conn, holder_id, now))

        return await self._db.read("catalog_search", txn)

    def _cap_left_txn(self, conn: sqlite3.Connection, holder_id: str, now: int) -> int | None:
        """What the holder's cap for this year (R3) still lets be issued to it."""
        policy = self._policies.maybe_for_year(year_of(now))
        holder = registry.get_holder(conn, holder_id)
        category = policy.categories.get(holder.category) if policy is not None else None
        if policy is None or category is None:
            return None
        used, _ = voucher_rows.holder_standing(conn, holder_id, policy.fiscal_year)
        return max(0, category.annual_cap_fen - used)

    async def utilisation(self, who: Principal, between: bool = False) -> dict[str, Any]:
        """What is offered and how much of it is used (docs/operations.md, "Compute offers").

        ``between``: also what cities captured from each other's vouchers, from every
        member's countersigned pair statements (gathered and verified as netting does, the
        same at every node): ``between_cities``, with the statements' ``netting_id``.

        ``federation``: every city's live capacity by class, from the signed offers in the
        catalog, the same at every node that holds the same offers. ``providers`` and
        ``classes``: this city's offers, and what accepted orders took of them and what was
        captured against those orders, from this city's books. ``used_bp``: ordered
        card-hours over the card-hours still on offer, in basis points."""
        require_operator(who)
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> dict[str, Any]:
            federation = store.capacity(conn, now)
            offered = store.provider_capacity(conn, self.region, now)
            ordered = store.provider_orders(conn, self.region)
            return {"federation": federation, "offered": offered, "ordered": ordered}

        raw = await self._db.read("catalog_utilisation", txn)
        rows: dict[tuple[str, str], dict[str, Any]] = {}

        def row(provider_id: str, compute_class: str) -> dict[str, Any]:
            return rows.setdefault(
                (provider_id, compute_class),
                {
                    "provider_id": provider_id,
                    "provider_name": "",
                    "compute_class": compute_class,
                    **dict.fromkeys(USAGE, 0),
                },
            )

        for pid, name, cls, offers, cards, hours in raw["offered"]:
            r = row(pid, cls)
            r.update(provider_name=name, offers=offers, cards=cards, card_hours=hours)
        for pid, cls, count, hours, fen, captured in raw["ordered"]:
            row(pid, cls).update(
                orders=count, ordered_card_hours=hours, ordered_fen=fen, captured_fen=captured
            )
        classes: dict[str, dict[str, Any]] = {}
        for r in rows.values():
            c = classes.setdefault(
                r["compute_class"], {"compute_class": r["compute_class"], **dict.fromkeys(USAGE, 0)}
            )
            for k in USAGE:
                c[k] += r[k]
        for r in (*rows.values(), *classes.values()):
            r["used_bp"] = _used_bp(r["ordered_card_hours"], r["card_hours"])
        shown: dict[str, Any] = {}
        if between and self.agreed is not None:
            net = await self.agreed(who)
            pairs: dict[tuple[str, str], int] = {}
            for st in net["statements"]:
                key = (st["issuer"], st["acquirer"])
                pairs[key] = pairs.get(key, 0) + int(st["total_fen"])
            shown = {
                "between_cities": [
                    {"issuer": i, "acquirer": a, "captured_fen": fen}
                    for (i, a), fen in sorted(pairs.items())
                ],
                "netting_id": net["netting_id"],
                "unreachable_peers": net["unreachable_peers"],
            }
        return {
            **shown,
            "federation": [
                {"city": city, "compute_class": cls, "offers": n, "cards": cards, "card_hours": h}
                for city, cls, n, cards, h in raw["federation"]
            ],
            "providers": sorted(
                rows.values(), key=lambda r: (r["provider_id"], r["compute_class"])
            ),
            "classes": sorted(classes.values(), key=lambda r: r["compute_class"]),
        }


USAGE = (
    "offers",
    "cards",
    "card_hours",
    "orders",
    "ordered_card_hours",
    "ordered_fen",
    "captured_fen",
)


def _used_bp(ordered: int, offered: int) -> int:
    return ordered * 10_000 // offered if offered else 0


def _effective_key(p: Priced) -> tuple[int, int, str, str]:
    return (p.effective_fen, p.offer.terms.price_fen, p.offer.origin, p.offer.offer_id)


def _cheapest_after_txn(
    conn: sqlite3.Connection,
    filters: Filters,
    now: int,
    limit: int,
    purse: dict[str, Purse],
    reach: Reach,
) -> list[Offer]:
    """The ``limit`` offers cheapest after the voucher, from slices each ordered by list
    price, which the index walks: for each class the holder has a voucher of, the offers in
    the cities its vouchers may go to (their price after the voucher rises with the list
    price); then every other offer (no subsidy: the list price is the price), read only up to
    the dearest price after the voucher found so far."""
    allowed = tuple(sorted(r for r in (reach.home, *reach.room_fen) if (reach.room(r) or 0) > 0))
    classes = tuple(sorted(purse))
    if filters.compute_class is not None:
        classes = tuple(c for c in classes if c == filters.compute_class)
    found: list[Offer] = []
    keys: list[int] = []
    if allowed:
        for compute_class in classes:
            ratio = purse[compute_class].ratio_bp
            part = store.cheapest(
                conn, filters, now, limit, classes=(compute_class,), origins=allowed
            )
            found.extend(part)
            keys.extend(o.terms.price_fen - apply_ratio(o.terms.price_fen, ratio) for o in part)
    below = heapq.nsmallest(limit, keys)[-1] if len(keys) >= limit else None
    found.extend(
        store.cheapest(
            conn,
            filters,
            now,
            limit,
            exclude=(classes, allowed) if classes and allowed else None,
            below_fen=below,
        )
    )
    return found
