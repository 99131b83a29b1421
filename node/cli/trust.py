"""Who may act and whom this node trusts: tokens, its card, peers, its own keys."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from node.app import build_node
from node.cli.options import (
    FEN,
    hours,
    operator_of,
    with_data,
)
from node.clock import iso
from node.config import ConfigError
from node.config import load as load_config

logger = logging.getLogger(__name__)


def _cmd_token(args: argparse.Namespace) -> int:
    node = build_node(args.data)
    try:
        if args.action == "create":
            token_id, token = node.tokens.create_sync(
                operator_of(args), args.role, args.subject, args.label or ""
            )
            print(f"token {token_id} ({args.role}); shown once: {token}")
        elif args.action == "list":
            for row in node.tokens.list_sync(operator_of(args)):
                print(json.dumps(row, ensure_ascii=False))
        else:
            node.tokens.revoke_sync(operator_of(args), args.token_id)
            print(f"token {args.token_id} revoked")
    finally:
        node.close()
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
            peering.add(imported, card.envelope, operator_of(args))
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
                operator_of(args),
            )
            print(f"peer {args.region} updated")
        else:
            peering.revoke_key(args.region, args.key_id, operator_of(args))
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
                operator_of(args).actor,
            )
            print(f"new key {new}: the node signs with it after a restart")
            print(
                f"key {old} is retiring: it stays valid until every peer has acknowledged the new "
                f"card (suanli peer status), then {args.overlap_hours:g} h more"
            )
            print("the running node announces the new card to its peers every sweep interval")
        elif args.action == "revoke":
            ownkeys.revoke(
                node.db, config.key_path, args.key_id, now, operator_of(args).actor, args.force
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


def register(sub: Any) -> None:
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
    sp.add_argument("--overlap-hours", type=hours, default=72.0)
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
