"""The house rules, read from the code so that they cannot rot (docs/architecture.md):

    cli, provision, tools  →  app (the composition root), runtime, node
                           →  api | federation  (the two transports, never each other)
                           →  services  →  domain, store  →  leaves

Every import of the product is parsed (imports under ``if TYPE_CHECKING:`` carry no arrow);
an import that runs the wrong way fails the test, as does SQL outside ``node/store`` and a
wire or web library in the services or the domain.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Layers, highest first; a module may import its own layer and any layer below it, with the
# exceptions in FORBIDDEN.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("top", ("node.cli", "node.provision", "node.tools")),
    ("root", ("node.app", "node.runtime", "node.node", "node.standby")),
    ("transport", ("node.web", "node.api", "federation")),
    ("services", ("node.services", "node.metrics", "node.reports", "node.backups")),
    # config reads node.toml and checks it with the store's and the domain's own rules
    ("books", ("node.domain", "node.store", "node.config")),
    (
        "leaves",
        (
            "node.errors",
            "node.clock",
            "node.keys",
            "node.logs",
            "node.files",
            "node.faults",
            "node.csvout",
            "federation.proto",
        ),
    ),
]
# Same or lower layer, and still not allowed.
FORBIDDEN: list[tuple[str, str, str]] = [
    ("node.api", "federation", "the two transports do not know each other"),
    ("federation", "node.api", "the two transports do not know each other"),
    ("node.api", "node.store", "REST handlers call services, never the store"),
    ("node.web", "node.store", "pages call services, never the store"),
    ("node.web", "federation", "pages call services, never the wire"),
    ("node.api", "node.web", "the API does not know the pages"),
    ("node.domain", "node.store", "the domain is pure: no I/O"),
    ("node.services", "federation", "services know no protobuf and no wire"),
    *(
        ("federation", f"node.store.{table}", "money moves in services: the wire calls them")
        for table in ("ledger", "vouchers", "registry", "settlement")
    ),
]
# Only these may import the composition root.
ROOT_IMPORTERS = ("node.cli", "node.provision", "node.tools")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _files() -> list[Path]:
    """The product's modules (generated code and the two empty package files aside)."""
    return sorted(
        p
        for top in ("node", "federation")
        for p in (ROOT / top).rglob("*.py")
        if ("proto" not in p.relative_to(ROOT).parts and p.parent != ROOT / top)
        or p.stem != "__init__"
    )


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _all_imports(path: Path) -> set[str]:
    """Every module ``path`` imports at run time (anywhere in the file)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            skip |= {id(n) for child in node.body for n in ast.walk(child)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def imports(path: Path) -> set[str]:
    """The product modules ``path`` imports at run time."""
    known = {_module(p) for p in _files()} | {"federation.proto"}
    return {m for m in _all_imports(path) if m in known or m.startswith("federation.proto")}


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(_within(module, p) for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def edges() -> set[tuple[str, str]]:
    return {(_module(p), target) for p in _files() for target in imports(p) if target != _module(p)}


def wrong(source: str, target: str) -> bool:
    """Whether an import from ``source`` of ``target`` breaks a rule."""
    if layer(target) < layer(source):
        return True
    if any(_within(source, a) and _within(target, b) for a, b, _ in FORBIDDEN):
        return True
    if _within(target, "node.app"):
        return not any(_within(source, r) for r in ROOT_IMPORTERS)
    if _within(target, "node.tools"):  # tooling: the CLI's lazy subcommands, and itself
        return not (_within(source, "node.tools") or _within(source, "node.cli"))
    return False


def violations() -> set[tuple[str, str]]:
    return {(source, target) for source, target in edges() if wrong(source, target)}


def test_every_module_has_a_layer() -> None:
    for p in _files():
        layer(_module(p))


def test_imports_point_one_way() -> None:
    bad = sorted(violations())
    assert not bad, "imports against the house rules:\n" + "\n".join(
        f"  {a} -> {b}" for a, b in bad
    )


TRANSPORT_LIBRARIES = ("grpc", "google.protobuf", "aiohttp", "federation")


def test_services_and_domain_know_no_wire() -> None:
    """No protobuf, gRPC or aiohttp below the transports: the services take values."""
    found = {
        f"{p.relative_to(ROOT)}: {m}"
        for top in ("services", "domain")
        for p in sorted((ROOT / "node" / top).glob("*.py"))
        for m in _all_imports(p)
        if any(_within(m, lib) for lib in TRANSPORT_LIBRARIES)
    }
    assert not found, sorted(found)


def test_no_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for a, b in edges():
        graph.setdefault(a, set()).add(b)
    seen: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if seen.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in seen:
                visit(nxt, [*path, node])
        seen[node] = 2

    for start in sorted(graph):
        if start not in seen:
            visit(start, [])


SQL = re.compile(r"\.execute(many|script)?\(|\bSAVEPOINT\b|\bSELECT\b.+\bFROM\b")


def test_sql_lives_in_the_store() -> None:
    found = set()
    for p in _files():
        relative = str(p.relative_to(ROOT))
        if relative.startswith(("node/store/", "node/tools/")):  # tools are not the product
            continue
        if SQL.search(p.read_text()):
            found.add(relative)
    assert not found, f"SQL outside node/store: {sorted(found)}"


def test_the_rules_catch_wrong_arrows() -> None:
    """The checker itself, on arrows the code does not have."""
    assert wrong("node.services.spending", "federation.envelope")  # services know no wire
    assert wrong("node.api.handlers", "node.store.vouchers")  # REST calls services
    assert wrong("node.api.routes", "federation.server")  # transports apart
    assert wrong("node.store.db", "node.services.common")  # up a layer
    assert wrong("node.api.routes", "node.app")  # only the CLI imports the root
    assert wrong("node.store.audit", "node.tools.crosscheck")  # tools are not product
    assert not wrong("node.app", "federation.server")
    assert not wrong("node.services.spending", "node.store.vouchers")


# A module name used in more than one package names the same concept in each layer (the rules,
# the service, the tables of one thing); any other repeat is two different things under one
# name, which a reader would confuse.
SAME_CONCEPT = {
    "__init__",
    "catalog",
    "orders",
    "offers",
    "clearing",
    "sessions",
    "settling",
    "execution",
    "issuance",
    "netting",
    "outbox",
    "payments",
    "policy",
    "registry",
    "reports",
    "spending",
    "statements",
}


def test_one_name_one_thing() -> None:
    seen: dict[str, list[str]] = {}
    for p in _files():
        seen.setdefault(p.stem, []).append(str(p.relative_to(ROOT)))
    repeated = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert set(repeated) <= SAME_CONCEPT, {n: repeated[n] for n in set(repeated) - SAME_CONCEPT}


def test_transaction_functions_say_so() -> None:
    """In the services (where async methods and functions that run inside a transaction sit
    side by side), a function that takes the connection is named ``…txn`` (Synapse's
    ``*_txn``): a reader sees at once what runs inside ``Database.run`` and must not await."""
    unmarked = []
    for p in sorted((ROOT / "node" / "services").glob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [a.arg for a in node.args.args]
                if "conn" in names[:2] and not node.name.endswith("txn"):
                    unmarked.append(f"{p.name}:{node.lineno} {node.name}")
    assert not unmarked, unmarked
