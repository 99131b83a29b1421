"""The committed generated code is exactly what the .proto files generate (Flower's check-protos)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent / "protos" / "codegen.py"
_spec = importlib.util.spec_from_file_location("codegen", HERE)
assert _spec is not None and _spec.loader is not None
codegen = importlib.util.module_from_spec(_spec)
sys.modules["codegen"] = codegen
_spec.loader.exec_module(codegen)
ROOT, generate = codegen.ROOT, codegen.generate


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    fresh = generate(tmp_path)
    assert fresh, "nothing was generated"
    names = sorted(str(p.relative_to(tmp_path)) for p in fresh)
    committed = sorted(
        str(p.relative_to(ROOT))
        for p in ROOT.glob("federation/**/*_pb2*.py*")
        if p.suffix in (".py", ".pyi")  # not bytecode a run without PYTHONDONTWRITEBYTECODE left
    )
    assert names == committed
    for path in fresh:
        relative = path.relative_to(tmp_path)
        assert (ROOT / relative).read_bytes() == path.read_bytes(), (
            f"{relative} is stale: run `make protos` and commit the result"
        )


def test_the_contract_is_versioned() -> None:
    from federation.proto.v1 import federation_pb2 as pb

    assert pb.DESCRIPTOR.package == "suanli.federation.v1"
    assert {m.name for m in pb.DESCRIPTOR.services_by_name["Federation"].methods} == {
        "Authorize",
        "Capture",
        "Void",
        "Redeem",
        "Status",
        "PushCard",
        "GetCard",
        "Settle",
        "Statements",
        "Offers",
        "Orders",
        "Exchange",
        "Stream",
    }
