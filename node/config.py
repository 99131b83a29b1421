"""The node's own configuration: ``node.toml`` in its data folder, written by ``suanli init``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from node.store.db import SYNCHRONOUS

CONFIG_FILE = "node.toml"
KEY_FILE = "node.key"
DB_FILE = "suanli.db"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class NodeConfig:
    data_dir: Path
    region: str
    name: str
    http_host: str = "127.0.0.1"
    http_port: int = 8330
    max_body_bytes: int = 64 * 1024
    synchronous: str = "FULL"
    sweep_interval_seconds: float = 5.0

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_FILE

    @property
    def key_path(self) -> Path:
        return self.data_dir / KEY_FILE


def render(config: NodeConfig) -> str:
    return (
        "# Suanli node configuration. See docs/operations.md.\n"
        "[node]\n"
        f'region = "{config.region}"\n'
        f'name = "{config.name}"\n\n'
        "[http]\n"
        f'host = "{config.http_host}"\n'
        f"port = {config.http_port}\n"
        f"max_body_bytes = {config.max_body_bytes}\n\n"
        "[storage]\n"
        f'synchronous = "{config.synchronous}"\n\n'
        "[sweeper]\n"
        f"interval_seconds = {config.sweep_interval_seconds}\n"
    )


def load(data_dir: Path) -> NodeConfig:
    path = data_dir / CONFIG_FILE
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: run `suanli init` first") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        node = doc["node"]
        http = doc.get("http", {})
        storage = doc.get("storage", {})
        sweeper = doc.get("sweeper", {})
        config = NodeConfig(
            data_dir=data_dir,
            region=str(node["region"]),
            name=str(node["name"]),
            http_host=str(http.get("host", "127.0.0.1")),
            http_port=int(http.get("port", 8330)),
            max_body_bytes=int(http.get("max_body_bytes", 64 * 1024)),
            synchronous=str(storage.get("synchronous", "FULL")).upper(),
            sweep_interval_seconds=float(sweeper.get("interval_seconds", 5.0)),
        )
    except KeyError as exc:
        raise ConfigError(f"{path}: missing key {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if config.synchronous not in SYNCHRONOUS:
        raise ConfigError(f"{path}: storage.synchronous must be one of {', '.join(SYNCHRONOUS)}")
    if len(config.region) != 6 or not config.region.isdigit():
        raise ConfigError(f"{path}: node.region must be a 6-digit GB/T 2260 code")
    return config
