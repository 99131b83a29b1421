"""What every service shares: who is asking, ids, one-time secrets."""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from dataclasses import dataclass

from node import errors

ROLES = ("operator", "holder", "provider")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a role and, for holders and providers, whose it is."""

    role: str
    subject_id: str | None
    token_id: str
    name: str = ""  # an operator's: the token's label, or the person at the command line

    @property
    def actor(self) -> str:
        """How the caller is named in the history and the audit trail: a holder or provider
        by its id; an operator by the token it used and that token's label
        (``operator:tok_1f… (ops desk)``), or at the command line by name
        (``operator:cli (alice)``); the node's own background work as ``system:system``."""
        base = f"{self.role}:{self.subject_id or self.token_id}"
        return f"{base} ({self.name})" if self.role == "operator" and self.name else base


def cli_operator(name: str) -> Principal:
    """The operator at the command line (``--operator``, else the OS user)."""
    return Principal("operator", None, "cli", name)


SYSTEM = Principal("system", None, "system")


def require_operator(who: Principal) -> None:
    if who.role not in ("operator", "system"):
        raise errors.Forbidden("only an operator may do this")


def require_role(who: Principal, role: str) -> str:
    """The caller must have ``role``; returns its subject id."""
    if who.role != role or who.subject_id is None:
        raise errors.Forbidden(f"only a {role} may do this")
    return who.subject_id


def may_see(who: Principal, role: str, subject_id: str) -> bool:
    """Operators see everything; holders and providers only what is theirs."""
    return who.role in ("operator", "system") or (who.role == role and who.subject_id == subject_id)


_SEQUENCE = itertools.count(secrets.randbits(20))


def new_id(prefix: str) -> str:
    """A record id, 16 hex digits: the time in milliseconds (11) then this process's sequence
    number (5, from a random start). Unique within a process however fast it runs; ordered by
    time, so a new row's primary key lands at the end of its index instead of on a random
    page (far fewer pages written per commit). Not secret: ids are never capabilities, and
    secrets (tokens, one-time codes, keys) come from ``secrets``."""
    return f"{prefix}_{time.time_ns() // 1_000_000:011x}{next(_SEQUENCE) & 0xFFFFF:05x}"


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
