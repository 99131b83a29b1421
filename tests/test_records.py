"""The signed-record test vector in docs/records.md is what the code produces."""

from __future__ import annotations

from pathlib import Path

from node.domain.model import Voucher
from node.keys import VOUCHER_TAG, NodeKey, verify_voucher
from node.services.issuance import voucher_record

DOC = Path(__file__).resolve().parent.parent / "docs" / "records.md"


def vector() -> dict[str, str]:
    block = DOC.read_text().split("## Test vector")[1].split("```")[1]
    return {
        line.split(None, 1)[0]: line.split(None, 1)[1].strip()
        for line in block.strip().splitlines()
    }


def test_vector_matches_code() -> None:
    v = vector()
    key = NodeKey(bytes.fromhex(v["seed"]))
    assert key.public_key.hex() == v["public_key"] and key.key_id == v["key_id"]
    assert VOUCHER_TAG.hex() == v["tag_hex"]
    voucher = Voucher(
        "v_0123456789abcdef",
        "h_00112233445566aa",
        2026,
        "model_services",
        3000,
        30_000_000,
        30_000_000,
        0,
        0,
        0,
        "active",
        1772413200000,
        1803949200000,
        "d_fedcba9876543210",
    )
    record = voucher_record(voucher, "91330100716105852F", "330100", key.key_id)
    assert record == v["record"].encode()
    signature = key.sign(VOUCHER_TAG, record)
    assert signature.hex() == v["signature"]
    assert verify_voucher(record, signature, key.public_key)["face_fen"] == 30_000_000
