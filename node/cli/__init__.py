"""``suanli``: set up, run, check and administer a city node.

The commands live by what they are for: ``lifecycle`` (init, federation enable, serve, health,
check, backup, restore, demo), ``trust`` (tokens, the node's card, peers, its keys) and
``settling`` (the policy, settlement and payments, reports); ``options`` holds the options and
argument types they share.
"""

from __future__ import annotations

import argparse
import os
import sys

from node import VERSION, errors
from node.cli import lifecycle, settling, trust
from node.config import ConfigError
from node.files import FolderBusy
from node.store.db import BackupFailed, DatabaseUnreachable, SchemaTooNew
from node.store.schema import SCHEMA_VERSION


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="suanli", description="A city's compute-voucher node")
    p.add_argument(
        "--version",
        action="version",
        version=f"suanli {VERSION} (database schema {SCHEMA_VERSION})",
    )
    sub = p.add_subparsers(dest="command", required=True)
    lifecycle.register(sub)
    trust.register(sub)
    settling.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # its own options, parsed by the benchmark
        from node.tools.bench.run import main as bench

        return bench(argv[1:])
    args = parser().parse_args(argv)
    os.umask(0o077)  # whatever suanli writes is its owner's only (node/files.py)
    try:
        code: int = args.fn(args)
    except (
        errors.SuanliError,
        ConfigError,
        SchemaTooNew,
        OSError,
        FolderBusy,
        BackupFailed,
        DatabaseUnreachable,
    ) as exc:
        message = exc.message if isinstance(exc, errors.SuanliError) else str(exc)
        print(f"suanli: {message}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
