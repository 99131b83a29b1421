"""The node's Ed25519 signing key and the signed voucher record.

The private key is a 32-byte seed in a file readable only by its owner (mode 0600). The key id
is the first 16 hex digits of SHA-256 over the public key, so any member can tell which key
signed a record. Signatures are over a domain-separation tag followed by the exact bytes, so a
signature made for one purpose can never be replayed as another.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing

VOUCHER_TAG = b"suanli/voucher/v1\x00"


def key_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


class NodeKey:
    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        self._signing = nacl.signing.SigningKey(seed)
        self.public_key = bytes(self._signing.verify_key)
        self.key_id = key_id(self.public_key)

    @classmethod
    def generate(cls) -> NodeKey:
        return cls(os.urandom(32))

    @classmethod
    def load(cls, path: Path) -> NodeKey:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise PermissionError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
        return cls(bytes.fromhex(path.read_text().strip()))

    def save(self, path: Path) -> None:
        """Write the seed, creating the file 0600 before a single byte of it is written."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(bytes(self._signing).hex() + "\n")

    def sign(self, tag: bytes, body: bytes) -> bytes:
        return bytes(self._signing.sign(tag + body).signature)


def verify(public_key: bytes, tag: bytes, body: bytes, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public_key).verify(tag + body, signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return True


def canonical_json(value: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes a voucher record is signed as."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def verify_voucher(record: bytes, signature: bytes, public_key: bytes) -> dict[str, Any]:
    """Verify a voucher record offline, then parse it. Raises ValueError on a bad signature."""
    if not verify(public_key, VOUCHER_TAG, record, signature):
        raise ValueError("voucher signature does not verify with this key")
    parsed: dict[str, Any] = json.loads(record)
    return parsed
