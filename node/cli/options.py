"""What every ``suanli`` command shares: the data folder and operator options, the argument
types (each as strict as the REST API's fields), and who acts."""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Callable
from pathlib import Path

from node import errors
from node.config import ConfigError, FederationConfig, check_tls
from node.domain.fields import MAX_FEN, parse_int
from node.services.common import Principal, cli_operator

SERVE_FILE = "serve.json"
DEFAULT_DATA = Path(os.environ.get("SUANLI_DATA", "data"))


def operator_of(args: argparse.Namespace) -> Principal:
    """Who acts, for the audit trail: ``--operator``, else $SUANLI_OPERATOR, else the OS user."""
    name = args.operator or os.environ.get("SUANLI_OPERATOR")
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # a container's user with no passwd entry
            name = f"uid {os.getuid()}"
    return cli_operator(name)


def federation_of(args: argparse.Namespace) -> FederationConfig:
    """The ``[federation]`` section from init's or ``federation enable``'s options, its TLS
    files checked and their paths made absolute (relative to where the command runs)."""
    federation = FederationConfig(
        host=args.grpc_host,
        port=args.grpc_port,
        endpoint=args.endpoint or "",
        plaintext=args.plaintext,
        tls_cert=args.tls_cert or "",
        tls_key=args.tls_key or "",
        tls_ca=args.tls_ca or "",
        mutual_tls=args.mutual_tls,
    )
    if not federation.plaintext and not (
        federation.tls_cert and federation.tls_key and federation.tls_ca
    ):
        raise ConfigError(
            "federation needs --tls-cert, --tls-key and --tls-ca, or --plaintext (loopback only)"
        )
    return check_tls(federation, Path.cwd())


def _whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: ASCII digits within ``low..high`` (as every door takes integers)."""

    def parse(text: str) -> int:
        try:
            return parse_int("value", text, low, high)
        except errors.InvalidRequest as exc:
            raise argparse.ArgumentTypeError(exc.message.removeprefix("value: ")) from None

    return parse


def hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a number of hours") from None
    if not 0 <= hours <= 24 * 366:  # also refuses nan and inf
        raise argparse.ArgumentTypeError("must be between 0 and 8784 hours")
    return hours


def OPERATOR(text: str) -> str:
    name = text.strip()
    if not 1 <= len(name) <= 64 or not name.isprintable() or any(c in name for c in "()"):
        raise argparse.ArgumentTypeError("1 to 64 printable characters, without parentheses")
    return name


PORT = _whole(0, 65_535)
FEN = _whole(0, MAX_FEN)
YEAR = _whole(2000, 2200)


def with_data(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sp.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the node's data folder")
    sp.add_argument(
        "--operator",
        type=OPERATOR,
        help="who you are, for the audit trail (default: $SUANLI_OPERATOR, else your OS user)",
    )
    return sp


def federation_options(sp: argparse.ArgumentParser, required: bool) -> None:
    sp.add_argument(
        "--grpc-port",
        type=PORT,
        required=required,
        help="join a federation: serve gRPC on this port",
    )
    sp.add_argument("--grpc-host", default="127.0.0.1")
    sp.add_argument("--endpoint", help="host:port peers should dial (default grpc-host:grpc-port)")
    sp.add_argument(
        "--plaintext", action="store_true", help="no TLS: loopback demos and tests only"
    )
    sp.add_argument("--tls-cert", help="PEM certificate (relative paths: from here)")
    sp.add_argument("--tls-key", help="PEM private key, mode 0600")
    sp.add_argument("--tls-ca", help="CA that signs the federation's certificates")
    sp.add_argument("--mutual-tls", action="store_true")
