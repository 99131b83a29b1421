"""``suanli``: set up, run, check and administer a city node."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from node import VERSION, errors, logs
from node.app import build_node, make_app
from node.clock import iso
from node.config import ConfigError, FederationConfig, check_tls
from node.config import load as load_config
from node.domain.fields import MAX_FEN, parse_int
from node.domain.money import yuan
from node.domain.policy import policy_summary
from node.files import FolderBusy, FolderLock
from node.node import Node
from node.provision import init_node
from node.services.common import Principal, cli_operator
from node.store.db import BackupFailed, SchemaTooNew, backup
from node.store.schema import SCHEMA_VERSION

logger = logging.getLogger(__name__)

SERVE_FILE = "serve.json"
DEFAULT_DATA = Path(os.environ.get("SUANLI_DATA", "data"))


def _operator(args: argparse.Namespace) -> Principal:
    """Who acts, for the audit trail: ``--operator``, else $SUANLI_OPERATOR, else the OS user."""
    name = args.operator or os.environ.get("SUANLI_OPERATOR")
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # a container's user with no passwd entry
            name = f"uid {os.getuid()}"
    return cli_operator(name)


def _federation_of(args: argparse.Namespace) -> FederationConfig:
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


def _cmd_init(args: argparse.Namespace) -> int:
    federation = _federation_of(args) if args.grpc_port is not None else None
    token = init_node(
        args.data,
        args.region,
        args.name,
        Path(args.policy).read_text(),
        args.port,
        args.synchronous,
        federation=federation,
        who=_operator(args),
    )
    print(f"node {args.region} ({args.name}) created in {args.data}")
    print(f"operator token (shown once, stored hashed): {token}")
    return 0


async def serve(node: Node, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT. Writes ``serve.json`` (pid, bound port) once listening."""
    from node.api.http import Runner

    runner = Runner(make_app(node), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    state = node.config.data_dir / SERVE_FILE
    tmp = state.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {"pid": os.getpid(), "host": host, "http_port": bound, "grpc_port": node.grpc_port}
        )
    )
    tmp.replace(state)
    logger.info("node %s serving http://%s:%d", node.config.region, host, bound)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        state.unlink(missing_ok=True)
        await runner.cleanup()
        logger.info("node %s stopped", node.config.region)


def _cmd_serve(args: argparse.Namespace) -> int:
    lock = FolderLock(Path(args.data))
    lock.acquire()  # before anything is opened: a second serve changes nothing
    try:
        return _serve_locked(args)
    finally:
        lock.release()


def _serve_locked(args: argparse.Namespace) -> int:
    node = build_node(args.data)
    logs.setup(node.config.region, fmt=args.log_format or node.config.log_format)
    host = args.host or node.config.http_host
    port = node.config.http_port if args.port is None else args.port
    # SUANLI_PROFILE=DIR: profile the whole run (cProfile) into DIR/serve-<region>.pstats when
    # the node stops; for benchmarks (docs/benchmarks.md), never in production.
    profile_dir = os.environ.get("SUANLI_PROFILE")
    profiler = None
    if profile_dir:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        asyncio.run(serve(node, host, port))
    finally:
        if profiler is not None and profile_dir:
            profiler.disable()
            profiler.dump_stats(Path(profile_dir) / f"serve-{node.config.region}.pstats")
        node.close()
    return 0


def _cmd_health(args: argparse.Namespace) -> int:
    """Is the node in DATA serving? Its REST /health answers ok and, if federated, its gRPC
    port accepts connections (TLS or not), on this machine, at the ports ``serve.json``
    names: for container and service health checks. Exit 0 if healthy, 1 if not, saying why."""
    import socket
    import urllib.request

    state = Path(args.data) / SERVE_FILE
    try:
        serving = json.loads(state.read_text())
        port, grpc_port = int(serving["http_port"]), serving.get("grpc_port")
        fed = load_config(Path(args.data)).federation
    except (OSError, ValueError, KeyError) as exc:
        print(f"unhealthy: {state} is not readable ({exc}): the node is not serving")
        return 1

    def reachable(host: str) -> str:  # a wildcard bind is reached on loopback
        return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host

    try:
        url = f"http://{reachable(str(serving.get('host', '')))}:{port}/health"
        with urllib.request.urlopen(url, timeout=3) as resp:
            body = json.loads(resp.read())
    except (OSError, ValueError) as exc:
        print(f"unhealthy: GET /health on port {port}: {exc}")
        return 1
    if body.get("status") != "ok":
        print(f"unhealthy: /health says {body}")
        return 1
    if grpc_port:
        try:
            host = reachable(fed.host if fed else "")
            socket.create_connection((host, int(grpc_port)), timeout=3).close()
        except OSError as exc:
            print(f"unhealthy: the federation port {grpc_port} refuses connections: {exc}")
            return 1
    print(f"healthy: {body['region']} {body['version']}, REST {port}, gRPC {grpc_port or '-'}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    node = build_node(args.data)
    try:
        problems = node.check()
    finally:
        node.close()
    if problems:
        for p in problems:
            print(f"VIOLATION: {p}")
        return 1
    print("books balance: every invariant holds")
    return 0


def _cmd_token(args: argparse.Namespace) -> int:
    node = build_node(args.data)
    try:
        if args.action == "create":
            token_id, token = node.tokens.create_sync(
                _operator(args), args.role, args.subject, args.label or ""
            )
            print(f"token {token_id} ({args.role}); shown once: {token}")
        elif args.action == "list":
            for row in node.tokens.list_sync(_operator(args)):
                print(json.dumps(row, ensure_ascii=False))
        else:
            node.tokens.revoke_sync(_operator(args), args.token_id)
            print(f"token {args.token_id} revoked")
    finally:
        node.close()
    return 0


EXAMPLE_POLICIES = ("hangzhou", "qingdao", "guiyang")


def _cmd_policy(args: argparse.Namespace) -> int:
    if args.action == "example":  # shipped with the package: no checkout needed
        from importlib.resources import files

        text = (files("node.tools") / "policies" / f"{args.city}-2026.toml").read_text()
        if args.out:
            Path(args.out).write_text(text)
            print(f"the {args.city} 2026 example policy written to {args.out}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0
    node = build_node(args.data)
    try:
        if args.action == "load":
            policy, version = node.policies.load_sync(Path(args.file).read_text(), _operator(args))
            print(
                f"policy {policy.fiscal_year} v{version} loaded; budget {yuan(policy.annual_budget_fen)}"
            )
        else:
            policy = node.policies.for_year(args.year) if args.year else node.policies.current()
            print(json.dumps(policy_summary(policy), indent=2, ensure_ascii=False))
    finally:
        node.close()
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from node.config import load as load_config
    from node.reports import export

    config = load_config(args.data)
    if args.out:
        with open(args.out, "w", newline="", encoding="utf-8") as out:
            n = export(config.db_path, args.report, args.format, out, config.region)
        print(f"{n} rows written to {args.out}", file=sys.stderr)
    else:
        export(config.db_path, args.report, args.format, sys.stdout, config.region)
    return 0


def _cmd_federation(args: argparse.Namespace) -> int:
    from node.provision import enable_federation

    federation = _federation_of(args)
    enable_federation(args.data, federation, args.replace)
    print(
        f"federation {'changed' if args.replace else 'enabled'}: gRPC on {federation.host}:"
        f"{federation.port}, peers dial {federation.advertised}"
        + (" (plaintext: loopback only)" if federation.plaintext else " (TLS)")
    )
    print("restart the node to serve it; then exchange cards (suanli card export)")
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    from federation.cards import card_text, parse_card

    node = build_node(args.data)
    try:
        if node.federation is None:
            raise ConfigError("this node has no [federation] section: see suanli federation enable")
        envelope = node.federation.card()
    finally:
        node.close()
    card = parse_card(card_text(envelope))
    # The fingerprint goes to the operator (stderr when the card itself is on stdout): it is
    # what they read to the peer's operator, who compares it at `peer add`.
    if args.action == "fingerprint":
        print(f"{card.card.region} {card.card.name} fingerprint: {card.fingerprint}")
        return 0
    if args.out:
        Path(args.out).write_text(card_text(envelope))
        print(f"card written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(card_text(envelope))
    print(f"fingerprint: {card.fingerprint} (read it to the peer's operator)", file=sys.stderr)
    return 0


def _cmd_peer(args: argparse.Namespace) -> int:
    from federation.cards import parse_card
    from node.services.peering import Peering

    node = build_node(args.data)
    try:
        peering = Peering(node.db, node.clock, node.config.region)
        if args.action == "add":
            card = parse_card(Path(args.card).read_text())
            print(f"peer {card.card.region} {card.card.name} at {card.card.endpoint}")
            print(f"fingerprint: {card.fingerprint}")
            if args.fingerprint is not None and args.fingerprint.replace(
                " ", ""
            ) != card.fingerprint.replace(" ", ""):
                print("the fingerprint does not match: not imported", file=sys.stderr)
                return 1
            if (
                not args.yes
                and args.fingerprint is None
                and (
                    not sys.stdin.isatty()
                    or input("trust this card? [y/N] ").strip().lower() != "y"
                )
            ):
                print("not imported", file=sys.stderr)
                return 1
            fed = node.config.federation
            cap = (
                args.exposure_cap_fen
                if args.exposure_cap_fen is not None
                else (fed.default_exposure_cap_fen if fed else 0)
            )
            imported = card.peer(not args.no_outbound, not args.no_inbound, cap)
            peering.add(imported, card.envelope, _operator(args))
            print(f"peer {card.card.region} imported")
        elif args.action == "list":
            for peer in peering.list():
                print(json.dumps(peer, ensure_ascii=False))
        elif args.action == "status":
            rows = peering.status(node.key)
            if args.json:
                for row in rows:
                    print(json.dumps(row, ensure_ascii=False))
            for row in rows if not args.json else ():
                shown = (
                    f"has card v{row['card_version']}"
                    if row["acknowledged"]
                    else f"has card v{row['acknowledged_version']} of v{row['card_version']}: "
                    "NOT YET (pushed every sweep while reachable)"
                )
                backlog = (
                    f"outbox {row['outbox_pending']} (oldest {row['outbox_oldest_seconds']} s)"
                    if row["outbox_pending"]
                    else "outbox empty"
                )
                print(f"{row['region']} {row['name']} at {row['endpoint']}: {shown}; {backlog}")
        elif args.action == "set":
            peering.set_policy(
                args.region,
                None if args.outbound is None else args.outbound == "on",
                None if args.inbound is None else args.inbound == "on",
                args.exposure_cap_fen,
                _operator(args),
            )
            print(f"peer {args.region} updated")
        else:
            peering.revoke_key(args.region, args.key_id, _operator(args))
            print(f"key {args.key_id} of {args.region} revoked")
    finally:
        node.close()
    return 0


def _cmd_key(args: argparse.Namespace) -> int:
    from node.services import ownkeys

    config = load_config(args.data)
    node = build_node(args.data)
    try:
        now = node.clock.now_ms()
        if args.action == "rotate":
            old, new = ownkeys.rotate(
                node.db,
                args.data,
                config.key_path,
                int(args.overlap_hours * 3_600_000),
                now,
                _operator(args).actor,
            )
            print(f"new key {new}: the node signs with it after a restart")
            print(
                f"key {old} is retiring: it stays valid until every peer has acknowledged the new "
                f"card (suanli peer status), then {args.overlap_hours:g} h more"
            )
            print("the running node announces the new card to its peers every sweep interval")
        elif args.action == "revoke":
            ownkeys.revoke(
                node.db, config.key_path, args.key_id, now, _operator(args).actor, args.force
            )
            print(f"key {args.key_id} revoked; peers are told within a sweep interval")
        else:
            for k in node.db.run_sync("own_keys", lambda c: ownkeys.load_txn(c, node.key)):
                print(
                    json.dumps(
                        {
                            "key_id": k.key_id,
                            "not_before": iso(k.not_before) if k.not_before else None,
                            "not_after": iso(k.not_after) if k.not_after else None,
                            "revoked": k.revoked,
                            "current": k.key_id == node.key.key_id,
                        }
                    )
                )
    finally:
        node.close()
    return 0


def _cmd_settle(args: argparse.Namespace) -> int:
    from node.clock import parse_iso

    node = build_node(args.data)

    async def run() -> Any:
        try:
            if args.action == "windows":
                return await node.settlement.windows(_operator(args))
            if args.action == "close":
                return await node.settlement.close(_operator(args), args.window)
            if args.action == "payouts":
                if args.format == "json":
                    return await node.settlement.payouts(_operator(args), args.window)
                async for chunk in node.settlement.payouts_csv(_operator(args), args.window):
                    sys.stdout.write(chunk)
                return None
            if args.action == "statements":
                return await node.settlement_views.statements(_operator(args))
            if args.action == "disputes":
                return await node.settlement_views.disputes(_operator(args), not args.all)
            if args.action == "pay":
                return await node.disbursements.pay(
                    _operator(args),
                    args.window,
                    args.provider,
                    args.amount_fen,
                    args.value_date,
                    args.reference,
                )
            if args.action == "reverse":
                return await node.disbursements.reverse(_operator(args), args.payment, args.reason)
            if args.action == "payments":
                return await node.disbursements.listing(_operator(args), args.window, args.provider)
            if node.federation is None:
                raise ConfigError("this node is not part of a federation")
            until = parse_iso(args.until) if args.until else 0
            return await node.federation.netting.compute(_operator(args), until)
        finally:
            if node.federation is not None:
                await node.federation.clients.close()

    try:
        result = asyncio.run(run())
    finally:
        node.close()
    if result is not None:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def _cmd_backup(args: argparse.Namespace) -> int:
    from node import backups
    from node.config import load as load_config

    config = load_config(args.data)
    if args.to:
        taken = backups.take(config, Path(args.to))
        print(
            f"backup set {taken.path} (schema version {taken.schema_version}): the books, "
            "node.toml and the keys; keep it as secret as node.key"
        )
        return 0
    if not args.out:
        raise ConfigError("give a file for the books (suanli backup FILE) or --to FOLDER for a set")
    version = backup(config.db_path, Path(args.out))
    print(
        f"books backed up to {args.out} (schema version {version}); back up node.key and keys/ separately"
    )
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    from node import backups

    try:
        found = backups.restore(Path(args.source), Path(args.data), args.replace)
    except backups.RestoreRefused as exc:
        print(f"not restored: {exc}", file=sys.stderr)
        return 2
    print(
        f"restored {found.region} from the set taken at {iso(found.taken_at_ms)} into {args.data}"
    )
    print(
        "anything this node committed after that moment is not in it: peers keep their side "
        "(see docs/operations.md, Backups and a warm standby)"
    )
    node = build_node(Path(args.data))  # migrates a set from an older version forward
    try:
        problems = node.check()
    finally:
        node.close()
    for problem in problems:
        print(f"VIOLATION: {problem}")
    if problems:
        return 1
    print("books balance: every invariant holds; start it with suanli serve --data " + args.data)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from node.tools.demo import run_demo

    code: int = asyncio.run(run_demo(args))
    return code


def _whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: ASCII digits within ``low..high`` (as every door takes integers)."""

    def parse(text: str) -> int:
        try:
            return parse_int("value", text, low, high)
        except errors.InvalidRequest as exc:
            raise argparse.ArgumentTypeError(exc.message.removeprefix("value: ")) from None

    return parse


def _hours(text: str) -> float:
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="suanli", description="A city's compute-voucher node")
    p.add_argument(
        "--version",
        action="version",
        version=f"suanli {VERSION} (database schema {SCHEMA_VERSION})",
    )
    sub = p.add_subparsers(dest="command", required=True)

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
        sp.add_argument(
            "--endpoint", help="host:port peers should dial (default grpc-host:grpc-port)"
        )
        sp.add_argument(
            "--plaintext", action="store_true", help="no TLS: loopback demos and tests only"
        )
        sp.add_argument("--tls-cert", help="PEM certificate (relative paths: from here)")
        sp.add_argument("--tls-key", help="PEM private key, mode 0600")
        sp.add_argument("--tls-ca", help="CA that signs the federation's certificates")
        sp.add_argument("--mutual-tls", action="store_true")

    sp = with_data(
        sub.add_parser("init", help="create a node: folder, key, database, policy, first token")
    )
    sp.add_argument("--region", required=True, help="GB/T 2260 code, e.g. 330100")
    sp.add_argument("--name", required=True)
    sp.add_argument("--policy", required=True, help="the fiscal year's policy TOML")
    sp.add_argument("--port", type=PORT, default=8330)
    sp.add_argument("--synchronous", default="FULL", choices=["NORMAL", "FULL", "EXTRA"])
    federation_options(sp, required=False)
    sp.set_defaults(fn=_cmd_init)

    fp = sub.add_parser("federation", help="this node's part in the federation")
    fsub = fp.add_subparsers(dest="action", required=True)
    sp = with_data(
        fsub.add_parser(
            "enable", help="serve the federation on an existing node (writes node.toml)"
        )
    )
    federation_options(sp, required=True)
    sp.add_argument(
        "--replace",
        action="store_true",
        help="change the address or TLS files of a node already in",
    )
    fp.set_defaults(fn=_cmd_federation)

    sp = with_data(sub.add_parser("serve", help="serve the REST API"))
    sp.add_argument("--host")
    sp.add_argument("--port", type=PORT)
    sp.add_argument(
        "--log-format", choices=["text", "json"], help="default: [logging] format, else text"
    )
    sp.set_defaults(fn=_cmd_serve)

    with_data(sub.add_parser("check", help="verify the money invariants")).set_defaults(
        fn=_cmd_check
    )

    sp = with_data(
        sub.add_parser("health", help="exit 0 if the node in DATA serves (container health checks)")
    )
    sp.set_defaults(fn=_cmd_health)
    sp = with_data(
        sub.add_parser("backup", help="copy the books while the node serves (SQLite backup API)")
    )
    sp.add_argument("out", nargs="?", help="the books only, into this file")
    sp.add_argument(
        "--to", help="a whole backup set (books, node.toml, keys) in a new folder inside this one"
    )
    sp.set_defaults(fn=_cmd_backup)
    sp = sub.add_parser("restore", help="a new data folder from a backup set, checked")
    sp.add_argument("--from", dest="source", required=True, help="the backup set's folder")
    sp.add_argument("--data", required=True, help="the data folder to create")
    sp.add_argument(
        "--replace",
        action="store_true",
        help="into an existing folder whose node is stopped (its files are moved aside)",
    )
    sp.set_defaults(fn=_cmd_restore)

    tp = sub.add_parser("token", help="bearer tokens")
    tsub = tp.add_subparsers(dest="action", required=True)
    sp = with_data(tsub.add_parser("create"))
    sp.add_argument("--role", required=True, choices=["operator", "holder", "provider"])
    sp.add_argument("--subject", help="holder or provider id")
    sp.add_argument("--label")
    with_data(tsub.add_parser("list"))
    sp = with_data(tsub.add_parser("revoke"))
    sp.add_argument("token_id")
    tp.set_defaults(fn=_cmd_token)

    pp = sub.add_parser("policy", help="the fiscal year's policy")
    psub = pp.add_subparsers(dest="action", required=True)
    sp = with_data(psub.add_parser("show"))
    sp.add_argument("--year", type=YEAR)
    sp = with_data(psub.add_parser("load"))
    sp.add_argument("file")
    sp = psub.add_parser(
        "example", help="print a shipped example policy (real 2026 figures) to start from"
    )
    sp.add_argument("city", choices=EXAMPLE_POLICIES)
    sp.add_argument("--out", help="file to write (default: standard output)")
    pp.set_defaults(fn=_cmd_policy)

    cp = sub.add_parser("card", help="this node's card, for peers to import")
    csub = cp.add_subparsers(dest="action", required=True)
    sp = with_data(csub.add_parser("export"))
    sp.add_argument("--out", help="file to write (default: standard output)")
    with_data(
        csub.add_parser("fingerprint", help="this node's fingerprint, to read to a peer's operator")
    )
    cp.set_defaults(fn=_cmd_card)

    pp = sub.add_parser("peer", help="the federation's other cities")
    psub = pp.add_subparsers(dest="action", required=True)
    sp = with_data(
        psub.add_parser("add", help="import a peer's card, after comparing its fingerprint")
    )
    sp.add_argument("card", help="the peer's card file")
    sp.add_argument(
        "--fingerprint", help="the fingerprint the peer's operator read to you; must match"
    )
    sp.add_argument("--yes", action="store_true", help="trust the card without asking")
    sp.add_argument(
        "--no-outbound", action="store_true", help="our vouchers may not be spent there"
    )
    sp.add_argument("--no-inbound", action="store_true", help="our providers do not accept theirs")
    sp.add_argument("--exposure-cap-fen", type=FEN, help="most we may owe them in one window")
    with_data(psub.add_parser("list"))
    sp = with_data(
        psub.add_parser(
            "status", help="per peer: whether it has this node's current card, and its backlog"
        )
    )
    sp.add_argument("--json", action="store_true", help="one JSON object per peer")
    sp = with_data(psub.add_parser("set", help="change what may travel to and from a peer"))
    sp.add_argument("region")
    sp.add_argument("--outbound", choices=["on", "off"])
    sp.add_argument("--inbound", choices=["on", "off"])
    sp.add_argument("--exposure-cap-fen", type=FEN)
    sp = with_data(psub.add_parser("revoke-key", help="stop trusting one of a peer's keys"))
    sp.add_argument("region")
    sp.add_argument("key_id")
    pp.set_defaults(fn=_cmd_peer)

    kp = sub.add_parser("key", help="this node's own signing keys")
    ksub = kp.add_subparsers(dest="action", required=True)
    sp = with_data(
        ksub.add_parser(
            "rotate",
            help="start a new key; the old one stays valid until every peer has the new card, "
            "then for the overlap",
        )
    )
    sp.add_argument("--overlap-hours", type=_hours, default=72.0)
    sp = with_data(ksub.add_parser("revoke", help="stop a retired key being trusted by peers"))
    sp.add_argument("key_id")
    sp.add_argument(
        "--force",
        action="store_true",
        help="even if a peer has not acknowledged the current card: it is then cut off until "
        "its operator re-imports this node's card by hand",
    )
    with_data(ksub.add_parser("list"))
    kp.set_defaults(fn=_cmd_key)

    sp = sub.add_parser("settle", help="settlement windows, payouts, statements, disputes, netting")
    ssub = sp.add_subparsers(dest="action", required=True)
    with_data(ssub.add_parser("windows", help="closed windows and the open one"))
    sc = with_data(ssub.add_parser("close", help="close a window now (default: the current one)"))
    sc.add_argument("window", nargs="?")
    sc = with_data(ssub.add_parser("payouts", help="signed payout statements for providers"))
    sc.add_argument("--window")
    sc.add_argument("--format", default="json", choices=["json", "csv"])
    with_data(ssub.add_parser("statements", help="pair statements with other cities"))
    sc = with_data(ssub.add_parser("disputes", help="open disputes with their evidence"))
    sc.add_argument("--all", action="store_true", help="resolved ones too")
    sc = with_data(
        ssub.add_parser("pay", help="record a payment to a provider against its payout (兑付)")
    )
    sc.add_argument("window")
    sc.add_argument("provider", help="the provider's id")
    sc.add_argument("--amount-fen", type=FEN, required=True)
    sc.add_argument("--value-date", required=True, help="YYYY-MM-DD, the bank's value date")
    sc.add_argument("--reference", required=True, help="the bank's transfer reference")
    sc = with_data(ssub.add_parser("reverse", help="reverse a recorded payment, with a reason"))
    sc.add_argument("payment")
    sc.add_argument("--reason", required=True)
    sc = with_data(ssub.add_parser("payments", help="payments and reversals, with their advices"))
    sc.add_argument("--window")
    sc.add_argument("--provider")
    sc = with_data(
        ssub.add_parser("netting", help="net positions and transfers across the federation")
    )
    sc.add_argument("--until", help="statements of windows ended by this ISO time (default: all)")
    sp.set_defaults(fn=_cmd_settle)

    from node.reports import FORMATS, REPORTS

    sp = with_data(sub.add_parser("export", help="reports for the finance bureau and auditors"))
    sp.add_argument("report", choices=sorted(REPORTS))
    sp.add_argument("--format", default="csv", choices=FORMATS)
    sp.add_argument("--out", help="file to write (default: standard output)")
    sp.set_defaults(fn=_cmd_export)

    sub.add_parser(
        "bench", help="the benchmark (docs/benchmarks.md): suanli bench [--quick] [--out FILE]"
    )

    sp = sub.add_parser("demo", help="start a demo node with example holders, providers and flows")
    sp.add_argument(
        "--data", type=Path, help="keep the demo's data here (default: a new temp folder)"
    )
    sp.add_argument("--port", type=PORT, default=8330)
    sp.add_argument("--once", action="store_true", help="run the scenario, check the books, exit")
    sp.set_defaults(fn=_cmd_demo)
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
    ) as exc:
        message = exc.message if isinstance(exc, errors.SuanliError) else str(exc)
        print(f"suanli: {message}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
