"""Sign-in sessions for the platform's pages (OWASP's session management cheat sheet).

A person signs in with a token (an operator's, a holder's or a provider's, the same tokens as
the API's); the node then keeps a server-side session: a random 256-bit id in an HttpOnly,
Secure, SameSite=Strict cookie, of which the database keeps only the SHA-256, and a random
CSRF token that every form carries back. A session ends at sign-out, after ``IDLE_MS``
without a request, after ``ABSOLUTE_MS`` in all, and at once when its token is revoked (each
request reads the token's row). Failed sign-ins are counted per client address: after
``THROTTLE_LIMIT`` in ``THROTTLE_WINDOW_MS`` the address waits (``too_many_attempts``).
The pages see what the token's role sees through the API: the session carries the same
``Principal`` to the same services.
"""

from __future__ import annotations

import collections
import hashlib
import secrets
import sqlite3
from dataclasses import dataclass

from node import errors
from node.clock import Clock
from node.services.common import Principal, require_operator
from node.services.registry import Tokens
from node.store import ledger
from node.store import sessions as store
from node.store.engine import Books

IDLE_MS = 30 * 60_000
ABSOLUTE_MS = 12 * 3_600_000
TOUCH_MS = 60_000  # last_seen is written at most once a minute per session
THROTTLE_LIMIT = 5
THROTTLE_WINDOW_MS = 10 * 60_000
THROTTLE_KEYS = 10_000
LINK_MINUTES = 24 * 60  # a sign-in link's default life; at most LINK_MAX_MINUTES
LINK_MAX_MINUTES = 7 * 24 * 60  # addresses remembered at most (the oldest are forgotten first)


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str
    id_sha256: str


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Throttle:
    """Failed attempts per key within a sliding window, in memory, bounded."""

    def __init__(self, limit: int, window_ms: int) -> None:
        self._limit = limit
        self._window = window_ms
        self._failures: collections.OrderedDict[str, list[int]] = collections.OrderedDict()

    def wait_ms(self, key: str, now: int) -> int:
        """0 when ``key`` may try; else how long until it may."""
        recent = [t for t in self._failures.get(key, []) if t > now - self._window]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent[0] + self._window - now if len(recent) >= self._limit else 0

    def failed(self, key: str, now: int) -> None:
        self._failures.setdefault(key, []).append(now)
        self._failures.move_to_end(key)
        while len(self._failures) > THROTTLE_KEYS:
            self._failures.popitem(last=False)


class Sessions:
    def __init__(self, db: Books, clock: Clock, tokens: Tokens) -> None:
        self._db = db
        self._clock = clock
        self._tokens = tokens
        self.throttle = Throttle(THROTTLE_LIMIT, THROTTLE_WINDOW_MS)

    async def sign_in(self, token: str, client: str) -> tuple[str, Session]:
        """A new session for the token's holder; returns its id (for the cookie only)."""
        now = self._clock.now_ms()
        wait = self.throttle.wait_ms(client, now)
        if wait:
            raise errors.TooManyAttempts(
                f"too many failed sign-ins from this address: try again in {wait // 60_000 + 1} "
                "minutes"
            )
        try:
            who = await self._tokens.authenticate(token.strip())
        except errors.Unauthenticated:
            self.throttle.failed(client, now)
            raise errors.Unauthenticated("this token is not known here, or was revoked") from None
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        digest = _digest(session_id)

        def txn(conn: sqlite3.Connection) -> None:
            store.end_expired(conn, now, now - IDLE_MS)
            store.put_session(conn, digest, who.token_id, csrf, now, now + ABSOLUTE_MS)
            ledger.audit(conn, now, who.actor, "session.sign_in", who.token_id, client=client)

        await self._db.run("session_sign_in", txn)
        return session_id, Session(who, csrf, digest)

    async def issue_link(self, who: Principal, subject: str, minutes: int = LINK_MINUTES) -> str:
        """A one-time sign-in code for a holder or provider (by its id), a token (by the
        token's id), or ``self`` (the asking operator's token): the operator sends the link;
        it signs in once, within ``minutes``."""
        require_operator(who)
        if not 1 <= minutes <= LINK_MAX_MINUTES:
            raise errors.InvalidRequest(f"minutes: 1 to {LINK_MAX_MINUTES}")
        now = self._clock.now_ms()
        code = secrets.token_urlsafe(32)

        def txn(conn: sqlite3.Connection) -> None:
            # "self": the asking operator's own token (to open the pages in a browser)
            token = store.subject_token(conn, who.token_id if subject == "self" else subject)
            if token is None:
                raise errors.NotFound(f"no live token for {subject}")
            store.put_link(conn, _digest(code), token["id"], who.actor, now, now + minutes * 60_000)
            ledger.audit(conn, now, who.actor, "session.link", token["id"], minutes=minutes)

        await self._db.run("session_link", txn)
        return code

    async def sign_in_link(self, code: str, client: str) -> tuple[str, Session]:
        """Use a one-time sign-in code: a new session, the code spent."""
        now = self._clock.now_ms()
        wait = self.throttle.wait_ms(client, now)
        if wait:
            raise errors.TooManyAttempts("too many failed sign-ins from this address")
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        digest = _digest(session_id)

        def txn(conn: sqlite3.Connection) -> Session | None:
            token_id = store.use_link(conn, _digest(code), now) if len(code) <= 100 else None
            if token_id is None:
                return None
            store.put_session(conn, digest, token_id, csrf, now, now + ABSOLUTE_MS)
            row = store.find_session(conn, digest)
            if row is None:  # the token was revoked since
                return None
            who = Principal(row["role"], row["subject_id"], row["token_id"], row["label"])
            ledger.audit(
                conn, now, who.actor, "session.sign_in", token_id, client=client, link=True
            )
            return Session(who, csrf, digest)

        session = await self._db.run("session_sign_in_link", txn)
        if session is None:
            self.throttle.failed(client, now)
            raise errors.Unauthenticated("this sign-in link is unknown, used or expired")
        return session_id, session

    async def current(self, session_id: str) -> Session | None:
        """The live session of this cookie value, or None (unknown, expired, token revoked)."""
        if not session_id or len(session_id) > 100:
            return None
        digest = _digest(session_id)
        now = self._clock.now_ms()
        row = await self._db.read("session_find", lambda c: store.find_session(c, digest))
        if row is None or row["expires_at"] <= now or row["last_seen"] + IDLE_MS <= now:
            return None
        if now - row["last_seen"] >= TOUCH_MS:
            await self._db.run("session_touch", lambda c: store.touch_session(c, digest, now))
        who = Principal(row["role"], row["subject_id"], row["token_id"], row["label"])
        return Session(who, row["csrf"], digest)

    async def sign_out(self, session: Session) -> None:
        now = self._clock.now_ms()

        def txn(conn: sqlite3.Connection) -> None:
            store.end_session(conn, session.id_sha256)
            ledger.audit(conn, now, session.principal.actor, "session.sign_out", "")

        await self._db.run("session_sign_out", txn)
