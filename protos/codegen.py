"""Regenerate the Python code for the protocol: ``python protos/codegen.py [OUT]`` (``make
protos``). It lives beside the ``.proto`` files, not in the product: a serving node never needs it.

The ``.proto`` tree under ``protos/`` mirrors the import path (``protos/federation/proto/v1``
→ ``federation/proto/v1``), so generated imports work as they are. The generated files are
committed; ``tests/test_protos.py`` regenerates into a temporary folder and fails when they
are stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def generate(out: Path) -> list[Path]:
    from grpc_tools import protoc

    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed")
    return sorted(out.glob("federation/**/*_pb2*.py*"))


if __name__ == "__main__":
    generated = generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
    print("\n".join(str(p) for p in generated))
