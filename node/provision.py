"""Fresh data folders: a new node (``suanli init``) and a federation of fresh nodes peered with
each other (the demo, the benchmark, the tests). Above the composition root: it builds nodes
to provision them, and only the CLI, the tools and the tests use it."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from federation.cards import card_text, parse_card
from node.app import build_node
from node.config import (
    CONFIG_FILE,
    ConfigError,
    FederationConfig,
    NodeConfig,
    check_storage,
    render,
)
from node.config import load as load_config
from node.domain.policy import parse_policy
from node.files import write_private
from node.keys import NodeKey
from node.services.common import SYSTEM, Principal
from node.services.peering import Peering
from node.store.engine import open_database


def init_node(
    data_dir: Path,
    region: str,
    name: str,
    policy_text: str,
    port: int,
    synchronous: str = "FULL",
    sweep_interval: float = 5.0,
    federation: FederationConfig | None = None,
    who: Principal = SYSTEM,
    storage: dict[str, Any] | None = None,
) -> str:
    """Create a node's data folder, key, database and policy; return the first operator token.
    ``who`` is named in the audit trail (the operator at the command line). ``storage``: the
    engine's settings (``backend``, ``dsn``, ``password_file``) when not the SQLite file."""
    if (data_dir / CONFIG_FILE).exists():
        raise ConfigError(f"{data_dir} already holds a node; refusing to overwrite it")
    policy = parse_policy(policy_text)  # fail before creating anything
    if policy.region != region:
        raise ConfigError(f"policy.region: {policy.region} is not this node's region {region}")
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    config = NodeConfig(
        data_dir=data_dir,
        region=region,
        name=name,
        http_port=port,
        synchronous=synchronous,
        sweep_interval_seconds=sweep_interval,
        federation=federation,
        **(storage or {}),
    )
    check_storage(config, "storage")
    write_private(data_dir / CONFIG_FILE, render(config))
    NodeKey.generate().save(config.key_path)
    open_database(config).close()
    node = build_node(data_dir)
    try:
        node.policies.load_sync(policy_text, who)
        _, token = node.tokens.create_sync(
            who, "operator", None, "first operator, from suanli init"
        )
    finally:
        node.close()
    return token


def enable_federation(data_dir: Path, federation: FederationConfig, replace: bool) -> None:
    """Add (or with ``replace``, change) the ``[federation]`` section of an existing node's
    ``node.toml``; the federation's other settings (skew, timeouts, caps…) are kept when
    replacing. The TLS files must already be checked (``check_tls``)."""
    config = load_config(data_dir)
    if config.federation is not None and not replace:
        raise ConfigError(
            f"{data_dir} is already in a federation (gRPC {config.federation.host}:"
            f"{config.federation.port}); pass --replace to change its address or TLS files"
        )
    if config.federation is not None:
        new = federation
        federation = dataclasses.replace(
            config.federation,
            host=new.host,
            port=new.port,
            endpoint=new.endpoint,
            plaintext=new.plaintext,
            tls_cert=new.tls_cert,
            tls_key=new.tls_key,
            tls_ca=new.tls_ca,
            mutual_tls=new.mutual_tls,
        )
    if federation.port == config.http_port and federation.host == config.http_host:
        raise ConfigError(f"--grpc-port: {federation.port} is the REST API's port")
    write_private(
        data_dir / CONFIG_FILE, render(dataclasses.replace(config, federation=federation))
    )


def peer_all(members: list[tuple[str, Path]], exposure_cap_fen: int) -> None:
    """Make fresh, stopped nodes (region, data folder) peers of each other: export each
    card (also left in the others' folders as ``<region>.card``) and import it everywhere else."""
    cards = {}
    for region, data in members:
        node = build_node(data)
        try:
            assert node.federation is not None, f"{data} has no [federation] section"
            cards[region] = card_text(node.federation.card())
        finally:
            node.close()
    for region, data in members:
        node = build_node(data)
        try:
            peering = Peering(node.db, node.clock, region)
            for other, card in cards.items():
                if other != region:
                    (data / f"{other}.card").write_text(card)
                    parsed = parse_card(card)
                    peering.add(parsed.peer(True, True, exposure_cap_fen), parsed.envelope, SYSTEM)
        finally:
            node.close()
