"""The node's own configuration: ``node.toml`` in its data folder, written by ``suanli init``."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass
from os import path as os_path
from pathlib import Path

from node.domain.fields import endpoints_problem, is_region
from node.store.db import SYNCHRONOUS

CONFIG_FILE = "node.toml"
KEY_FILE = "node.key"
DB_FILE = "suanli.db"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class FederationConfig:
    host: str = "127.0.0.1"
    port: int = 9330
    endpoint: str = ""  # advertised host:port in the node card; default host:port
    # Several advertised endpoints, tried by peers in this order (docs/protocol.md §6); when
    # set, the first is the card's ``endpoint``.
    endpoints: tuple[str, ...] = ()
    plaintext: bool = False  # only when the operator asks: demos and tests on loopback
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""  # trusted CA for peers' certificates
    mutual_tls: bool = False  # require and present client certificates
    max_skew_seconds: float = 300.0
    call_timeout_seconds: float = 2.0
    backoff_base_seconds: float = 0.2
    backoff_cap_seconds: float = 30.0
    default_exposure_cap_fen: int = 100_000_000_00  # ¥100,000,000 per partner per window
    statement_recheck_seconds: float = (
        600.0  # ask again this often while an issuer's window is open
    )
    # An unanswered or disputed statement is sent again after this, doubling with each
    # attempt since the issuer last answered, up to 10 minutes.
    statement_retry_seconds: float = 5.0
    # Records carried with a statement (and with a mismatch reply) when there are at most this
    # many; above, only the signed count, total and digest travel. At most 4,000: gRPC
    # messages here are ≤ 1 MiB and a record with the longest ids allowed takes ~240 bytes.
    statement_inline_records: int = 2_000
    # Countersigned statements per STATEMENTS reply asked of each peer when netting (a node
    # sends at most 1,000 per reply whatever is asked: a few hundred bytes each, inside 1 MiB).
    statements_page: int = 500
    # Compute offers (docs/protocol.md §5d): one anti-entropy round (asking one peer, in turn,
    # for every origin's changes this node misses) this often; pushes and catch-up need none.
    offer_anti_entropy_seconds: float = 60.0

    @property
    def advertised(self) -> str:
        return self.endpoint or f"{self.host}:{self.port}"

    @property
    def advertised_all(self) -> tuple[str, ...]:
        """Every endpoint the node card lists, in the order peers try them: ``endpoints``
        (an active/standby pair lists both nodes), else the one ``advertised``."""
        return self.endpoints or (self.advertised,)


@dataclass(frozen=True)
class NodeConfig:
    data_dir: Path
    region: str
    name: str
    http_host: str = "127.0.0.1"
    http_port: int = 8330
    max_body_bytes: int = 64 * 1024
    synchronous: str = "FULL"
    # The engine (docs/operations.md, "Choosing an engine"): "sqlite" (the file in the data
    # folder) or "postgresql" (``dsn``, a libpq connection string without the password, which
    # lives in ``password_file``, 0600, relative to the data folder, or libpq's PGPASSFILE).
    backend: str = "sqlite"
    dsn: str = ""
    password_file: str = ""
    sweep_interval_seconds: float = 5.0
    log_format: str = "text"
    federation: FederationConfig | None = None
    # Scheduled backups (docs/operations.md, "Backups and a warm standby"): a full set every
    # interval into ``backup_folder`` (relative: to the data folder), the newest
    # ``backup_keep`` kept. Off while the folder is "".
    backup_folder: str = ""
    backup_interval_minutes: float = 60.0
    backup_keep: int = 48

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_FILE

    @property
    def key_path(self) -> Path:
        return self.data_dir / KEY_FILE

    @property
    def password_path(self) -> Path | None:
        if not self.password_file:
            return None
        path = Path(self.password_file)
        return path if path.is_absolute() else self.data_dir / path


def _render_postgresql(config: NodeConfig) -> str:
    if config.backend != "postgresql":
        return ""
    return (
        f"dsn = {json.dumps(config.dsn)}\n"
        f"password_file = {json.dumps(config.password_file)}  # 0600; or libpq's PGPASSFILE\n"
    )


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
        f'backend = "{config.backend}"\n'
        f'synchronous = "{config.synchronous}"  # SQLite only\n' + _render_postgresql(config) + "\n"
        "[sweeper]\n"
        f"interval_seconds = {config.sweep_interval_seconds}\n\n"
        "[logging]\n"
        f'format = "{config.log_format}"  # text or json (JSON lines)\n\n'
        "[backup]\n"
        "# A full backup set (books, node.toml, keys) every interval while serving; off while\n"
        "# folder is empty. Put it on another disk or machine (docs/operations.md, Backups).\n"
        f'folder = "{config.backup_folder}"\n'
        f"interval_minutes = {config.backup_interval_minutes}\n"
        f"keep = {config.backup_keep}\n"
        + (_render_federation(config.federation) if config.federation else "")
    )


def _render_federation(f: FederationConfig) -> str:
    return (
        "\n[federation]\n"
        f'host = "{f.host}"\n'
        f"port = {f.port}\n"
        f'endpoint = "{f.endpoint}"\n'
        + (f"endpoints = {json.dumps(list(f.endpoints))}\n" if f.endpoints else "")
        + f"plaintext = {str(f.plaintext).lower()}\n"
        f'tls_cert = "{f.tls_cert}"\n'
        f'tls_key = "{f.tls_key}"\n'
        f'tls_ca = "{f.tls_ca}"\n'
        f"mutual_tls = {str(f.mutual_tls).lower()}\n"
        f"max_skew_seconds = {f.max_skew_seconds}\n"
        f"call_timeout_seconds = {f.call_timeout_seconds}\n"
        f"backoff_base_seconds = {f.backoff_base_seconds}\n"
        f"backoff_cap_seconds = {f.backoff_cap_seconds}\n"
        f"default_exposure_cap_fen = {f.default_exposure_cap_fen}\n"
        f"statement_recheck_seconds = {f.statement_recheck_seconds}\n"
        f"statement_retry_seconds = {f.statement_retry_seconds}\n"
        f"statement_inline_records = {f.statement_inline_records}\n"
        f"statements_page = {f.statements_page}\n"
        f"offer_anti_entropy_seconds = {f.offer_anti_entropy_seconds}\n"
    )


TLS_FILES = (
    ("tls_cert", "CERTIFICATE", "certificate"),
    ("tls_key", "PRIVATE KEY", "private key"),
    ("tls_ca", "CERTIFICATE", "CA certificate"),
)


BACKENDS = ("sqlite", "postgresql")
_PASSWORD_IN_DSN = re.compile(r"(^|\s)password\s*=|://[^/@\s]*:[^/@\s]*@", re.IGNORECASE)


def check_storage(config: NodeConfig, where: str) -> None:
    """The storage section: a known engine; for PostgreSQL a connection string that carries
    no password (it would sit in node.toml and in every log of the string)."""
    if config.backend not in BACKENDS:
        raise ConfigError(f"{where}: storage.backend must be one of {', '.join(BACKENDS)}")
    if config.backend == "postgresql":
        if not config.dsn.strip():
            raise ConfigError(f"{where}: storage.dsn is required with backend postgresql")
        if _PASSWORD_IN_DSN.search(config.dsn):
            raise ConfigError(
                f"{where}: storage.dsn must not carry a password; put it in "
                "storage.password_file (0600) or libpq's PGPASSFILE"
            )
        if config.backup_folder:
            raise ConfigError(
                f"{where}: backup.folder is for SQLite's file; back a PostgreSQL node's books up "
                "with the database's own tools (pg_dump, pgBackRest; docs/operations.md)"
            )
    elif config.dsn or config.password_file:
        raise ConfigError(f"{where}: storage.dsn and password_file are for backend postgresql")


def check_tls(fed: FederationConfig, base: Path) -> FederationConfig:
    """The federation's TLS files, checked before anything uses them, each error naming the key:
    the file exists and this user can read it, it is PEM of the right kind, and the private key
    is readable by its owner only. Relative paths are resolved against ``base`` (the folder the
    operator ran the command in, for ``init`` and ``federation enable``; the data folder for a
    path written in ``node.toml`` by hand) and come back absolute, so what is stored is what
    ``serve`` will open, whatever folder it starts in."""
    if fed.plaintext:
        return fed
    found: dict[str, str] = {}
    for name, marker, what in TLS_FILES:
        raw = getattr(fed, name)
        if not raw:
            raise ConfigError(f"federation.{name}: no {what} given")
        path = Path(raw) if Path(raw).is_absolute() else base / raw
        path = Path(os_path.abspath(path))
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"federation.{name}: {path} does not exist") from None
        except (PermissionError, IsADirectoryError):
            raise ConfigError(
                f"federation.{name}: {path} is not a file this user can read"
            ) from None
        if b"-----BEGIN " not in pem or marker.encode() not in pem:
            raise ConfigError(f"federation.{name}: {path} is not a PEM {what}")
        if name == "tls_key" and path.stat().st_mode & 0o077:
            raise ConfigError(
                f"federation.tls_key: {path} can be read by other users; chmod 600 it"
            )
        found[name] = str(path)
    return dataclasses.replace(
        fed, tls_cert=found["tls_cert"], tls_key=found["tls_key"], tls_ca=found["tls_ca"]
    )


MAX_INLINE_RECORDS = 4_000
MAX_STATEMENTS_PAGE = 1_000


def _load_federation(table: dict[str, object]) -> FederationConfig:
    known = {f.name: f for f in dataclasses.fields(FederationConfig)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"federation.{unknown[0]}: unknown key")
    values: dict[str, object] = {}
    for name, value in table.items():
        if name == "endpoints":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError("federation.endpoints: must be a list of host:port strings")
            problem = endpoints_problem(value) if value else None
            if problem:
                raise ConfigError(f"federation.endpoints: {problem}")
            values[name] = tuple(value)
            continue
        kind = type(getattr(FederationConfig(), name))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"federation.{name}: must be {kind.__name__}, got {value!r}")
        values[name] = value
    config = FederationConfig(**values)  # type: ignore[arg-type]
    if not 0 <= config.statement_inline_records <= MAX_INLINE_RECORDS:
        raise ConfigError(f"federation.statement_inline_records: must be 0 to {MAX_INLINE_RECORDS}")
    if not config.statement_retry_seconds > 0:
        raise ConfigError("federation.statement_retry_seconds: must be more than 0")
    if not 1 <= config.statements_page <= MAX_STATEMENTS_PAGE:
        raise ConfigError(f"federation.statements_page: must be 1 to {MAX_STATEMENTS_PAGE}")
    if not config.offer_anti_entropy_seconds >= 1:
        raise ConfigError("federation.offer_anti_entropy_seconds: must be at least 1")
    if not config.plaintext and not (config.tls_cert and config.tls_key and config.tls_ca):
        raise ConfigError(
            "federation: set tls_cert, tls_key and tls_ca, or plaintext = true (loopback demos and tests only)"
        )
    return config


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
            backend=str(storage.get("backend", "sqlite")),
            dsn=str(storage.get("dsn", "")),
            password_file=str(storage.get("password_file", "")),
            sweep_interval_seconds=float(sweeper.get("interval_seconds", 5.0)),
            log_format=str(doc.get("logging", {}).get("format", "text")),
            backup_folder=str(doc.get("backup", {}).get("folder", "")),
            backup_interval_minutes=float(doc.get("backup", {}).get("interval_minutes", 60.0)),
            backup_keep=int(doc.get("backup", {}).get("keep", 48)),
            federation=_load_federation(doc["federation"]) if "federation" in doc else None,
        )
    except KeyError as exc:
        raise ConfigError(f"{path}: missing key {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if config.log_format not in ("text", "json"):
        raise ConfigError(f"{path}: logging.format must be text or json")
    if config.synchronous not in SYNCHRONOUS:
        raise ConfigError(f"{path}: storage.synchronous must be one of {', '.join(SYNCHRONOUS)}")
    check_storage(config, str(path))
    if not is_region(config.region):
        raise ConfigError(f"{path}: node.region must be a 6-digit GB/T 2260 code")
    if not 0.01 <= config.backup_interval_minutes <= 10_080:
        raise ConfigError(f"{path}: backup.interval_minutes must be 0.01 to 10080 (a week)")
    if not 1 <= config.backup_keep <= 10_000:
        raise ConfigError(f"{path}: backup.keep must be 1 to 10000")
    unknown = set(doc.get("backup", {})) - {"folder", "interval_minutes", "keep"}
    if unknown:
        raise ConfigError(f"{path}: backup.{sorted(unknown)[0]}: unknown key")
    return config
