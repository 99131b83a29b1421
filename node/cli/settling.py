"""The year's policy and the money: settlement, payments to providers, reports."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from node.app import build_node
from node.cli.options import (
    FEN,
    YEAR,
    operator_of,
    with_data,
)
from node.config import ConfigError
from node.config import load as load_config
from node.domain.money import yuan
from node.domain.policy import policy_summary
from node.store.engine import connect_readonly

logger = logging.getLogger(__name__)


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
            policy, version = node.policies.load_sync(
                Path(args.file).read_text(), operator_of(args)
            )
            print(
                f"policy {policy.fiscal_year} v{version} loaded; budget {yuan(policy.annual_budget_fen)}"
            )
        else:
            policy = node.policies.for_year(args.year) if args.year else node.policies.current()
            print(json.dumps(policy_summary(policy), indent=2, ensure_ascii=False))
    finally:
        node.close()
    return 0


def _cmd_settle(args: argparse.Namespace) -> int:
    from node.clock import parse_iso

    node = build_node(args.data)

    async def run() -> Any:
        try:
            if args.action == "windows":
                return await node.settlement.windows(operator_of(args))
            if args.action == "close":
                return await node.settlement.close(operator_of(args), args.window)
            if args.action == "payouts":
                if args.format == "json":
                    return await node.settlement.payouts(operator_of(args), args.window)
                async for chunk in node.settlement.payouts_csv(operator_of(args), args.window):
                    sys.stdout.write(chunk)
                return None
            if args.action == "statements":
                return await node.settlement_views.statements(operator_of(args))
            if args.action == "disputes":
                return await node.settlement_views.disputes(operator_of(args), not args.all)
            if args.action == "pay":
                return await node.disbursements.pay(
                    operator_of(args),
                    args.window,
                    args.provider,
                    args.amount_fen,
                    args.value_date,
                    args.reference,
                )
            if args.action == "reverse":
                return await node.disbursements.reverse(
                    operator_of(args), args.payment, args.reason
                )
            if args.action == "reconcile":
                from node.domain.payments import bank_statement

                lines = bank_statement(Path(args.statement).read_text(encoding="utf-8"))
                return await node.disbursements.reconcile(operator_of(args), lines, args.confirm)
            if args.action == "payments":
                return await node.disbursements.listing(
                    operator_of(args), args.window, args.provider
                )
            if node.federation is None:
                raise ConfigError("this node is not part of a federation")
            until = parse_iso(args.until) if getattr(args, "until", None) else 0
            clearing = node.federation.clearing
            if args.action == "due":
                return await clearing.due(operator_of(args), until)
            if args.action == "transfer":
                return await clearing.record(
                    operator_of(args),
                    args.peer,
                    args.amount_fen,
                    args.value_date,
                    args.reference,
                    until,
                )
            if args.action == "transfers":
                return await clearing.transfers(operator_of(args), args.peer, args.state)
            if args.action in ("confirm", "dispute"):
                confirmed = args.action == "confirm"
                return await clearing.answer(
                    operator_of(args), args.transfer, confirmed, args.reason or ""
                )
            return await node.federation.netting.compute(operator_of(args), until)
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


def _cmd_export(args: argparse.Namespace) -> int:
    from node.reports import execution_csv, execution_html, export

    config = load_config(args.data)
    if args.report == "budget-execution":
        node = build_node(args.data)
        try:
            report = node.views.budget_execution_sync(operator_of(args), args.year, args.window)
            year = report["window"] or report["fiscal_year"]
        finally:
            node.close()
        out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
        try:
            if args.format == "json":
                out.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
            elif args.format == "csv":
                execution_csv(report, out)
            else:
                out.write(execution_html(report))
        finally:
            if args.out:
                out.close()
                print(f"budget execution {year} written to {args.out}", file=sys.stderr)
        return 0
    if args.format == "html":
        raise ConfigError("--format html is for budget-execution only")
    conn = connect_readonly(config)
    try:
        if args.out:
            with open(args.out, "w", newline="", encoding="utf-8") as out:
                n = export(conn, args.report, args.format, out, config.region)
            print(f"{n} rows written to {args.out}", file=sys.stderr)
        else:
            export(conn, args.report, args.format, sys.stdout, config.region)
    finally:
        conn.close()
    return 0


def register(sub: Any) -> None:
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
    sc = with_data(
        ssub.add_parser(
            "reconcile", help="match the bank's statement (CSV) with the recorded payments"
        )
    )
    sc.add_argument(
        "statement", help="CSV with columns date, amount (yuan), reference, counterparty"
    )
    sc.add_argument(
        "--confirm", action="store_true", help="keep the matches as the bank's confirmations"
    )
    sc = with_data(ssub.add_parser("payments", help="payments and reversals, with their advices"))
    sc.add_argument("--window")
    sc.add_argument("--provider")
    sc = with_data(
        ssub.add_parser("netting", help="net positions and transfers across the federation")
    )
    sc.add_argument("--until", help="statements of windows ended by this ISO time (default: all)")
    until_help = "only statements of windows ended by this ISO time (default: all)"
    sc = with_data(
        ssub.add_parser(
            "due", help="per partner city: agreed statements not yet settled, the net, who pays"
        )
    )
    sc.add_argument("--until", help=until_help)
    sc = with_data(
        ssub.add_parser(
            "transfer",
            help="record this city's transfer to a partner city and advise it (TRANSFER_ADVICE)",
        )
    )
    sc.add_argument("peer", help="the partner city's region code")
    sc.add_argument("--amount-fen", type=FEN, required=True)
    sc.add_argument("--value-date", required=True, help="YYYY-MM-DD, the bank's value date")
    sc.add_argument("--reference", required=True, help="the bank's transfer reference")
    sc.add_argument("--until", help=until_help)
    sc = with_data(ssub.add_parser("transfers", help="transfers between cities, both directions"))
    sc.add_argument("--peer")
    sc.add_argument("--state")
    sc = with_data(
        ssub.add_parser("confirm", help="the advised money arrived: confirm the transfer")
    )
    sc.add_argument("transfer")
    sc.add_argument("--reason", help="a note for the payer (optional)")
    sc = with_data(ssub.add_parser("dispute", help="the advised money did not arrive as advised"))
    sc.add_argument("transfer")
    sc.add_argument("--reason", required=True)
    sp.set_defaults(fn=_cmd_settle)

    from node.reports import FORMATS, REPORTS

    sp = with_data(sub.add_parser("export", help="reports for the finance bureau and auditors"))
    sp.add_argument("report", choices=[*sorted(REPORTS), "budget-execution"])
    sp.add_argument("--format", default="csv", choices=[*FORMATS, "html"])
    sp.add_argument("--year", type=YEAR, help="budget-execution: the fiscal year (default: now's)")
    sp.add_argument("--window", help="budget-execution: one settlement window instead")
    sp.add_argument("--out", help="file to write (default: standard output)")
    sp.set_defaults(fn=_cmd_export)
