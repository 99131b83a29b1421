"""A city's policy for one fiscal year: the operator edits it as TOML, the node validates it.

Every error names the bad key (``categories.enterprise.annual_cap_fen: …``) so an operator can
fix the file without reading code. Unknown keys are errors too: a typo must never silently fall
back to a default when public money is at stake.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from typing import Any

from node.domain.fields import MAX_FEN, is_region
from node.domain.money import BASIS_POINTS
from node.errors import PolicyInvalid

SETTLEMENT_CYCLES = ("quarterly", "monthly", "weekly", "daily", "minutes")
ELIGIBILITY = ("local", "federation")
DEFAULT_EXCLUDED = ("storage", "network", "security")


@dataclass(frozen=True)
class Category:
    name: str
    annual_cap_fen: int
    uscc_prefixes: tuple[str, ...]
    ratio_bp: int | None = None  # overrides the class ratio when higher (Shenzhen start-ups 60%)


@dataclass(frozen=True)
class SmallContract:
    """Hangzhou: small *enterprises* whose yearly compute contracts total ≤ a threshold get up
    to 50%. ``categories`` names the holder categories the rule is for (BRIEF R2: enterprises,
    not universities or research institutes)."""

    max_yearly_contracts_fen: int
    ratio_bp: int
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    region: str
    fiscal_year: int
    annual_budget_fen: int
    compute_classes: dict[str, int]
    categories: dict[str, Category]
    voucher_validity_months: int
    hold_expiry_seconds: int
    settlement_cycle: str
    settlement_window_minutes: int
    settlement_grace_minutes: int
    eligibility: str
    minimum_voucher_fen: int = 0
    small_contract: SmallContract | None = None
    excluded_services: tuple[str, ...] = DEFAULT_EXCLUDED
    dishonest_uscc: frozenset[str] = field(default_factory=frozenset)
    source_sha256: str = ""

    def ratio_for(self, compute_class: str, category: str, small_contract_eligible: bool) -> int:
        """The subsidy ratio in bp: the class's, raised by the category's or small-contract rule."""
        ratio = self.compute_classes[compute_class]
        cat = self.categories[category]
        if cat.ratio_bp is not None:
            ratio = max(ratio, cat.ratio_bp)
        if (
            small_contract_eligible
            and self.small_contract is not None
            and category in self.small_contract.categories
        ):
            ratio = max(ratio, self.small_contract.ratio_bp)
        return ratio


class _Reader:
    """Reads one TOML table, remembering the path for error messages and unused keys.

    Every problem is noted in ``problems`` (shared by the readers of one file) and a
    stand-in value returned, so that one reading finds every problem of a file, not only the
    first; ``parse_policy`` raises with all of them at the end. A table that is missing or
    not a table reads as empty and *quiet*: the keys it lacks are not noted once more."""

    def __init__(self, table: Any, path: str, problems: list[str], quiet: bool = False) -> None:
        self.quiet = quiet
        self.problems = problems
        if not isinstance(table, dict):
            self.note(path, "must be a table")
            table, self.quiet = {}, True
        self.table: dict[str, Any] = table
        self.path = path
        self.seen: set[str] = set()

    def note(self, key: str, problem: str) -> None:
        if not self.quiet:
            self.problems.append(f"{key}: {problem}")

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.table

    def raw(self, key: str) -> Any:
        """The value, or None (noted) when it is missing."""
        self.seen.add(key)
        if key not in self.table:
            self.note(self._key(key), "missing")
            return None
        return self.table[key]

    def integer(
        self, key: str, *, minimum: int = 0, maximum: int = MAX_FEN, default: int | None = None
    ) -> int:
        """An integer within ``minimum..maximum``; by default at most ``MAX_FEN`` (¥10
        trillion), which every amount is, and far within what SQLite stores."""
        if default is not None and key not in self.table:
            self.seen.add(key)
            return default
        stand_in = minimum if default is None else default
        value = self.raw(key)
        if value is None:
            return stand_in
        if isinstance(value, bool) or not isinstance(value, int):
            self.note(self._key(key), f"must be an integer, got {value!r}")
            return stand_in
        if not minimum <= value <= maximum:
            self.note(self._key(key), f"must be {minimum}..{maximum}, got {value}")
            return stand_in
        return value

    def string(
        self, key: str, *, choices: tuple[str, ...] | None = None, default: str | None = None
    ) -> str:
        if default is not None and key not in self.table:
            self.seen.add(key)
            return default
        stand_in = default if default is not None else (choices[0] if choices else "")
        value = self.raw(key)
        if value is None:
            return stand_in
        if not isinstance(value, str):
            self.note(self._key(key), f"must be a string, got {value!r}")
            return stand_in
        if choices is not None and value not in choices:
            self.note(self._key(key), f"must be one of {', '.join(choices)}, got {value!r}")
            return stand_in
        return value

    def str_list(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        if key not in self.table:
            self.seen.add(key)
            return default
        value = self.raw(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.note(self._key(key), "must be a list of strings")
            return default
        return tuple(value)

    def sub(self, key: str) -> _Reader:
        value = self.raw(key)
        if value is None:
            return _Reader({}, self._key(key), self.problems, quiet=True)
        return _Reader(value, self._key(key), self.problems, self.quiet)

    def done(self) -> None:
        for key in sorted(set(self.table) - self.seen):
            self.note(self._key(key), "unknown key")


def _ratio(reader: _Reader, key: str) -> int:
    return reader.integer(key, minimum=0, maximum=BASIS_POINTS)


def parse_policy(text: str, *, stored: bool = False) -> Policy:
    """Parse and validate a policy file; raises PolicyInvalid naming every bad key (its
    message joins them; ``details["problems"]`` lists them, each ``key.path: problem``).

    ``stored``: a policy the node loaded earlier, read again at start. One written before
    ``[small_contract] categories`` existed gets, for that key only, the categories whose
    USCC prefixes are all ``91`` (enterprises by registration type), and the node says so in
    its log; a new policy must name them."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyInvalid(f"not valid TOML: {exc}", problems=[f"not valid TOML: {exc}"]) from None
    problems: list[str] = []
    root = _Reader(doc, "", problems)
    top = root.sub("policy")
    region = top.string("region")
    if isinstance(top.table.get("region"), str) and not is_region(region):
        top.note("policy.region", f"must be a 6-digit GB/T 2260 code, got {region!r}")
    fiscal_year = top.integer("fiscal_year", minimum=2000, maximum=2200)
    budget = top.integer("annual_budget_fen", minimum=1)
    minimum_voucher = top.integer("minimum_voucher_fen", default=0)
    validity = top.integer("voucher_validity_months", minimum=1, maximum=60)
    hold_hours = top.integer("hold_expiry_hours", minimum=0, maximum=24 * 90, default=72)
    hold_seconds = top.integer("hold_expiry_seconds", minimum=1, default=max(1, hold_hours * 3600))
    cycle = top.string("settlement_cycle", choices=SETTLEMENT_CYCLES)
    window_minutes = top.integer("settlement_window_minutes", minimum=1, default=60)
    grace_minutes = top.integer("settlement_grace_minutes", minimum=0, default=60)
    eligibility = top.string("eligibility", choices=ELIGIBILITY)
    excluded = top.str_list("excluded_services", DEFAULT_EXCLUDED)
    top.done()

    classes_reader = root.sub("compute_classes")
    classes = {name: _ratio(classes_reader, name) for name in list(classes_reader.table)}
    classes_reader.done()
    if not classes:
        classes_reader.note("compute_classes", "at least one compute class is needed")
    for name in classes:
        if name in excluded:
            classes_reader.note(f"compute_classes.{name}", "is an excluded service, not compute")

    categories_reader = root.sub("categories")
    categories: dict[str, Category] = {}
    for name in list(categories_reader.table):
        cat = categories_reader.sub(name)
        prefixes = cat.str_list("uscc_prefixes")
        if not prefixes and cat.has("uscc_prefixes"):
            cat.note(f"categories.{name}.uscc_prefixes", "empty")
        elif not cat.has("uscc_prefixes"):
            cat.note(f"categories.{name}.uscc_prefixes", "missing")
        categories[name] = Category(
            name=name,
            annual_cap_fen=cat.integer("annual_cap_fen", minimum=1),
            uscc_prefixes=prefixes,
            ratio_bp=_ratio(cat, "ratio_bp") if cat.has("ratio_bp") else None,
        )
        cat.done()
    categories_reader.done()
    if not categories:
        categories_reader.note("categories", "at least one holder category is needed")

    small: SmallContract | None = None
    if root.has("small_contract"):
        sc = root.sub("small_contract")
        if stored and not sc.has("categories"):
            eligible = tuple(n for n, c in categories.items() if set(c.uscc_prefixes) == {"91"})
        else:
            eligible = sc.str_list("categories")
            if not eligible:
                sc.note(
                    "small_contract.categories",
                    "missing or empty: name the holder categories the small-contract ratio "
                    'is for, e.g. ["enterprise", "startup"]',
                )
        for name in eligible:
            if name not in categories:
                sc.note("small_contract.categories", f"{name!r} is not a category")
        small = SmallContract(
            sc.integer("max_yearly_contracts_fen", minimum=1), _ratio(sc, "ratio_bp"), eligible
        )
        sc.done()

    dishonest: frozenset[str] = frozenset()
    if root.has("dishonesty"):
        dl = root.sub("dishonesty")
        dishonest = frozenset(dl.str_list("uscc"))
        dl.done()
    root.done()
    if problems:
        raise PolicyInvalid("; ".join(problems), problems=problems)

    return Policy(
        region=region,
        fiscal_year=fiscal_year,
        annual_budget_fen=budget,
        compute_classes=classes,
        categories=categories,
        voucher_validity_months=validity,
        hold_expiry_seconds=hold_seconds,
        settlement_cycle=cycle,
        settlement_window_minutes=window_minutes,
        settlement_grace_minutes=grace_minutes,
        eligibility=eligibility,
        minimum_voucher_fen=minimum_voucher,
        small_contract=small,
        excluded_services=excluded,
        dishonest_uscc=dishonest,
        source_sha256=hashlib.sha256(text.encode()).hexdigest(),
    )


def policy_summary(policy: Policy) -> dict[str, Any]:
    """The policy as JSON for the API (public to every authenticated role)."""
    return {
        "region": policy.region,
        "fiscal_year": policy.fiscal_year,
        "annual_budget_fen": policy.annual_budget_fen,
        "minimum_voucher_fen": policy.minimum_voucher_fen,
        "voucher_validity_months": policy.voucher_validity_months,
        "hold_expiry_seconds": policy.hold_expiry_seconds,
        "settlement_cycle": policy.settlement_cycle,
        "settlement_window_minutes": policy.settlement_window_minutes,
        "settlement_grace_minutes": policy.settlement_grace_minutes,
        "eligibility": policy.eligibility,
        "excluded_services": list(policy.excluded_services),
        "compute_classes": dict(policy.compute_classes),
        "categories": {
            name: {
                "annual_cap_fen": c.annual_cap_fen,
                "uscc_prefixes": list(c.uscc_prefixes),
                "ratio_bp": c.ratio_bp,
            }
            for name, c in policy.categories.items()
        },
        "small_contract": None
        if policy.small_contract is None
        else {
            "max_yearly_contracts_fen": policy.small_contract.max_yearly_contracts_fen,
            "ratio_bp": policy.small_contract.ratio_bp,
            "categories": list(policy.small_contract.categories),
        },
        "dishonesty_list_size": len(policy.dishonest_uscc),
        "sha256": policy.source_sha256,
    }
