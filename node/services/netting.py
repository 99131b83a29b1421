"""Netting: any member computes the same net positions, and the fewest transfers, from the
countersigned pair statements alone (its own and every peer's, gathered through the
``StatementLink`` port), keeping only statements whose two signatures verify. The result
names the statements it covers by their ``netting_id`` (docs/settlement.md, "Netting")."""

from __future__ import annotations

import logging
from typing import Any

from node.domain.netting import netting_id, positions, transfers
from node.domain.statements import STATEMENT_TAG, SignedStatement, parsed
from node.keys import NodeKey, verify
from node.services.common import Principal, require_operator
from node.services.directory import Directory
from node.services.statements import NoAnswer, StatementLink, key_of, signed_row
from node.store import settlement as store
from node.store.engine import Books

logger = logging.getLogger(__name__)


def _well_formed(st: dict[str, Any]) -> bool:
    """A statement netting can use: parties, window and digest as text, count and total as
    non-negative integers (two cities' signatures on anything else still make it unusable)."""
    return all(
        isinstance(st.get(k), str) for k in ("issuer", "acquirer", "window", "digest")
    ) and all(type(st.get(k)) is int and st[k] >= 0 for k in ("count", "total_fen"))


class Netting:
    """Any member computes the same net positions from countersigned statements alone."""

    MAX_PAGES = 10_000  # per peer and netting: millions of statements, and never forever

    def __init__(
        self,
        db: Books,
        region: str,
        key: NodeKey,
        directory: Directory,
        link: StatementLink,
        page: int = 500,
    ) -> None:
        self._db = db
        self.region = region
        self._key = key
        self._directory = directory
        self._link = link
        self._page = page

    def _public(self, region: str, key_id: str) -> bytes | None:
        if region == self.region:
            return self._key.public_key if key_id == self._key.key_id else None
        return key_of(self._directory.get(region), key_id)

    def verified(self, signed: SignedStatement) -> dict[str, Any] | None:
        """The statement, if both of its signatures verify with keys known here."""
        st = parsed(signed.statement)
        if st is None or not _well_formed(st):
            return None
        acquirer_key = self._public(str(st.get("acquirer")), signed.acquirer_key_id)
        issuer_key = self._public(str(st.get("issuer")), signed.issuer_key_id)
        if acquirer_key is None or issuer_key is None:
            return None
        ok = verify(
            acquirer_key, STATEMENT_TAG, signed.statement, signed.acquirer_signature
        ) and verify(issuer_key, STATEMENT_TAG, signed.statement, signed.issuer_signature)
        return st if ok else None

    async def _gather(self, region: str, until_ms: int) -> list[SignedStatement]:
        """Every countersigned statement a peer is party to, a page per call."""
        gathered: list[SignedStatement] = []
        after = ""
        for _ in range(self.MAX_PAGES):
            statements, following = await self._link.page(region, until_ms, after, self._page)
            gathered += statements
            if not following:
                return gathered
            if following == after:
                raise NoAnswer(f"{region} answered the same page again")
            after = following
        raise NoAnswer(f"{region} has more than {self.MAX_PAGES} pages")

    async def compute(self, who: Principal, until_ms: int) -> dict[str, Any]:
        """Gather countersigned statements from this node and every peer, verify, and net."""
        require_operator(who)
        rows = await self._db.read("statements_agreed", lambda c: store.statements(c, "agreed"))
        gathered = [signed_row(r) for r in rows if until_ms == 0 or r["window_end"] <= until_ms]
        unreachable = []
        for peer in self._directory.all():
            try:
                gathered += await self._gather(peer.region, until_ms)
            except NoAnswer:
                unreachable.append(peer.region)
        used: dict[tuple[str, str, str], dict[str, Any]] = {}
        rejected = 0
        for signed in gathered:
            st = self.verified(signed)
            if st is None:
                rejected += 1
                continue
            used[(st["issuer"], st["acquirer"], st["window"])] = st
        obligations = [(i, a, st["total_fen"]) for (i, a, _), st in sorted(used.items())]
        net = positions(obligations)
        covered = [
            (i, a, w, st["total_fen"], st["digest"]) for (i, a, w), st in sorted(used.items())
        ]
        return {
            "until": until_ms,
            "netting_id": netting_id(covered),
            "statements": [
                {
                    "issuer": i,
                    "acquirer": a,
                    "window": w,
                    "total_fen": st["total_fen"],
                    "digest": st["digest"],
                }
                for (i, a, w), st in sorted(used.items())
            ],
            "positions": net,
            "transfers": [{"from": f, "to": t, "amount_fen": fen} for f, t, fen in transfers(net)],
            "unreachable_peers": unreachable,
            "rejected_statements": rejected,
        }
