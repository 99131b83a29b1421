"""The pure domain: money, USCC, policy parsing, the issuance rule. No sockets, no sleeps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node import errors
from node.clock import add_months, iso, parse_iso, year_of
from node.domain import uscc
from node.domain.issuance import Demand, Standing, decide
from node.domain.model import Holder, Provider
from node.domain.money import apply_ratio, yuan
from node.domain.policy import parse_policy
from node.errors import PolicyInvalid
from tests.conftest import policy_text

VALID = [
    "91330100716105852F",
    "914403001922038216",
    "12100000400000624D",
    "1210000042500615X0",
    "91310000132260250X",
]
INVALID = ["914403001922038217", "9144030019220382I6"]


@pytest.mark.parametrize("code", VALID)
def test_valid_uscc(code: str) -> None:
    assert uscc.check(code).ok


@pytest.mark.parametrize("code", INVALID)
def test_invalid_uscc(code: str) -> None:
    result = uscc.check(code)
    assert not result.ok and result.reason


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("9133010071610585", "18 characters"),
        ("91330100716105852f", "not allowed"),
        ("91ABCDEF716105852F", "region"),
    ],
)
def test_uscc_reasons(code: str, reason: str) -> None:
    assert reason in uscc.check(code).reason


def test_truncation_toward_zero() -> None:
    assert apply_ratio(999, 3000) == 299  # 299.7 → 299
    assert apply_ratio(1, 5000) == 0
    assert apply_ratio(33_333, 3333) == 11_109  # 11,109.8889 → 11,109
    assert apply_ratio(-999, 3000) == -299
    with pytest.raises(ValueError):
        apply_ratio(100, 10_001)


@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=0, max_value=10_000))
def test_ratio_is_exact_floor(amount: int, ratio: int) -> None:
    got = apply_ratio(amount, ratio)
    assert got * 10_000 <= amount * ratio < (got + 1) * 10_000


def test_percent() -> None:
    from node.domain.money import percent

    assert (percent(3000), percent(1250), percent(5), percent(10_000)) == (
        "30%",
        "12.5%",
        "0.05%",
        "100%",
    )


def test_yuan() -> None:
    assert yuan(25_000_000_000) == "¥250,000,000.00"
    assert yuan(-5) == "-¥0.05"


def test_clock_helpers() -> None:
    ms = parse_iso("2026-01-31T02:00:00Z")
    assert iso(ms) == "2026-01-31T02:00:00.000Z"
    assert iso(add_months(ms, 1)) == "2026-02-28T02:00:00.000Z"  # clamped to month end
    assert year_of(parse_iso("2025-12-31T17:00:00Z")) == 2026  # already 2026 in Beijing
    with pytest.raises(ValueError):
        parse_iso("2026-01-01T00:00:00")


def test_example_policies_parse() -> None:
    hz = parse_policy(policy_text("hangzhou"))
    assert hz.annual_budget_fen == 25_000_000_000
    assert hz.compute_classes == {
        "model_services": 3000,
        "domestic_chips": 3000,
        "other_compute": 2000,
    }
    assert hz.categories["enterprise"].annual_cap_fen == 800_000_000
    qd = parse_policy(policy_text("qingdao"))
    assert (
        qd.annual_budget_fen == 2_000_000_000
        and qd.categories["enterprise"].annual_cap_fen == 100_000_000
    )
    gy = parse_policy(policy_text("guiyang"))
    assert gy.eligibility == "federation" and gy.annual_budget_fen == 8_000_000_000


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        ({"annual_budget_fen": "2.5e8"}, "policy.annual_budget_fen: must be an integer"),
        ({"annual_budget_fen": "0"}, "policy.annual_budget_fen: must be 1..1000000000000000"),
        ({"model_services": "12000"}, "compute_classes.model_services: must be 0..10000"),
        ({"eligibility": '"anywhere"'}, "policy.eligibility: must be one of local, federation"),
        ({"region": '"33010"'}, "policy.region: must be a 6-digit"),
        ({"settlement_cycle": '"yearly"'}, "policy.settlement_cycle: must be one of"),
        (
            {"annual_cap_fen": "-1"},
            "categories.enterprise.annual_cap_fen: must be 1..1000000000000000",
        ),
    ],
)
def test_policy_errors_name_the_key(mutation: dict[str, str], message: str) -> None:
    with pytest.raises(errors.PolicyInvalid) as err:
        parse_policy(policy_text("hangzhou", **mutation))
    assert message in err.value.message


def test_policy_unknown_and_missing_keys() -> None:
    with pytest.raises(errors.PolicyInvalid, match=r"policy\.annual_budget_fen: missing"):
        parse_policy(policy_text().replace("annual_budget_fen", "anual_budget_fen"))
    with pytest.raises(errors.PolicyInvalid, match=r"policy\.hold_expiry_hour: unknown key"):
        parse_policy(
            policy_text().replace(
                "hold_expiry_hours = 72", "hold_expiry_hours = 72\nhold_expiry_hour = 2"
            )
        )
    with pytest.raises(errors.PolicyInvalid, match="not valid TOML"):
        parse_policy("[policy\n")
    with pytest.raises(
        errors.PolicyInvalid, match=r"compute_classes\.storage: is an excluded service"
    ):
        parse_policy(policy_text().replace("other_compute = 2000", "storage = 2000"))


def test_every_problem_of_a_policy_is_named_at_once() -> None:
    text = policy_text(
        "hangzhou", annual_budget_fen="2.5e8", model_services="12000", region='"33010"'
    ).replace("hold_expiry_hours = 72", "hold_expiry_hours = 72\nhold_expiry_hour = 2")
    with pytest.raises(errors.PolicyInvalid) as err:
        parse_policy(text)
    problems = err.value.details["problems"]
    assert [p.split(":")[0] for p in problems] == [
        "policy.region",
        "policy.annual_budget_fen",
        "policy.hold_expiry_hour",
        "compute_classes.model_services",
    ], problems
    assert err.value.message == "; ".join(problems)
    # A missing table is named once, not once per key it would have held.
    with pytest.raises(errors.PolicyInvalid) as err:
        parse_policy(policy_text().replace("[compute_classes]", "[compute_classez]"))
    assert err.value.details["problems"][:2] == [
        "compute_classes: missing",
        "compute_classez: unknown key",
    ]


HOLDER = Holder("h_1", "91330100716105852F", "Acme", "enterprise", "330100", None, 0)


def _decide(
    estimate: int = 1_000_000,
    standing: Standing | None = None,
    holder: Holder = HOLDER,
    provider: Provider | None = None,
    cls: str = "model_services",
    **policy: str,
):  # type: ignore[no-untyped-def]
    p = parse_policy(policy_text("hangzhou", **policy))
    s = standing or Standing(0, 50_000_000, p.annual_budget_fen, frozenset())
    return decide(
        p,
        holder,
        provider,
        Demand(
            holder.id, cls, estimate, provider.id if provider else None, "2026-01-01", "2026-12-31"
        ),
        s,
    )


def test_decide_ratio_and_truncation() -> None:
    d = _decide(1_000_003)
    assert d.issued and d.ratio_bp == 3000 and d.amount_fen == 300_000  # 300,000.9 → 300,000
    assert _decide(1_000_000, cls="other_compute").amount_fen == 200_000


def test_decide_small_contract_ratio() -> None:
    p = parse_policy(policy_text())
    small = decide(
        p,
        HOLDER,
        None,
        Demand("h_1", "other_compute", 10_000_000, None, "2026-01-01", "2026-12-31"),
        Standing(0, 0, p.annual_budget_fen, frozenset()),
    )
    assert small.ratio_bp == 5000 and small.amount_fen == 5_000_000
    big = decide(
        p,
        HOLDER,
        None,
        Demand("h_1", "other_compute", 10_000_000, None, "2026-01-01", "2026-12-31"),
        Standing(0, 45_000_000, p.annual_budget_fen, frozenset()),
    )
    assert big.ratio_bp == 2000


@pytest.mark.parametrize(
    ("category", "uscc", "ratio", "amount"),
    [
        ("enterprise", "91330100716105852F", 5000, 5_000_000),
        ("startup", "91330100716105852F", 5000, 5_000_000),
        # BRIEF R2: small *enterprises*. A university's or an institute's ¥100,000 of other
        # compute is 20%, ¥20,000, whatever its yearly contracts.
        ("university", "12100000400000624D", 2000, 2_000_000),
        ("research_institute", "12100000400000624D", 2000, 2_000_000),
    ],
)
def test_the_small_contract_ratio_is_for_the_categories_the_policy_names(
    category: str, uscc: str, ratio: int, amount: int
) -> None:
    p = parse_policy(policy_text())
    assert p.small_contract is not None
    assert p.small_contract.categories == ("enterprise", "startup")
    holder = Holder("h_1", uscc, "H", category, "330100", None, 0)
    d = decide(
        p,
        holder,
        None,
        Demand("h_1", "other_compute", 10_000_000, None, "2026-01-01", "2026-12-31"),
        Standing(0, 0, p.annual_budget_fen, frozenset()),
    )
    assert (d.ratio_bp, d.amount_fen) == (ratio, amount)
    assert any(r.code == "small_contract" for r in d.reasons) == (ratio == 5000)


def test_the_small_contract_rule_must_name_its_categories() -> None:
    without = policy_text().replace('categories = ["enterprise", "startup"]', "")
    with pytest.raises(PolicyInvalid, match=r"small_contract\.categories: missing"):
        parse_policy(without)
    with pytest.raises(PolicyInvalid, match="'hospital' is not a category"):
        parse_policy(policy_text().replace('["enterprise", "startup"]', '["hospital"]'))
    # A policy stored before the key existed is read with the enterprise categories (USCC 91).
    stored = parse_policy(without, stored=True)
    assert stored.small_contract is not None
    assert stored.small_contract.categories == ("enterprise", "startup")


@pytest.mark.parametrize(
    "value", ["18446744073709551616", "9223372036854775808", "1_000_000_000_000_001"]
)
def test_policy_integers_are_bounded(value: str) -> None:
    with pytest.raises(PolicyInvalid, match=r"policy\.annual_budget_fen: must be 1\.\.10"):
        parse_policy(policy_text(annual_budget_fen=value))


def test_decide_limits_by_cap_and_budget() -> None:
    by_cap = _decide(10**10, Standing(799_000_000, 10**9, 10**12, frozenset()))
    assert by_cap.amount_fen == 1_000_000 and any(r.code == "limited" for r in by_cap.reasons)
    by_budget = _decide(10**10, Standing(0, 10**9, 12_345, frozenset()))
    assert by_budget.amount_fen == 12_345
    assert (
        _decide(10**6, Standing(800_000_000, 10**9, 10**12, frozenset())).reasons[-1].code
        == "cap_exhausted"
    )
    assert _decide(10**6, Standing(0, 10**9, 0, frozenset())).reasons[-1].code == "budget_exhausted"


def test_decide_declines_with_reasons() -> None:
    outsider = Holder("h_2", "914403001922038216", "SZ", "enterprise", "440300", None, 0)
    assert [r.code for r in _decide(holder=outsider).reasons] == ["not_eligible_region"]
    dishonest = _decide(**{"uscc": '["91330100716105852F"]'})
    assert [r.code for r in dishonest.reasons] == ["dishonest"]
    assert [r.code for r in _decide(cls="storage").reasons] == ["out_of_scope"]
    pending = Provider(
        "p_1", "91330100MA2B3C4D5N", "P", "computing_centre", "330100", "pending", (), 0
    )
    assert [r.code for r in _decide(provider=pending).reasons] == ["provider_not_approved"]
    related = Provider(
        "p_2",
        "91330100MA2B3C4D5N",
        "P",
        "computing_centre",
        "330100",
        "approved",
        (HOLDER.uscc,),
        0,
    )
    assert [r.code for r in _decide(provider=related).reasons] == ["related_party"]
    assert _decide(3, cls="other_compute").reasons[-1].code == "amount_zero"
    below = _decide(1_000_000, minimum_voucher_fen="500_000")
    assert below.outcome == "declined" and below.reasons[-1].code == "below_minimum"


def test_hub_accepts_federation_members_only() -> None:
    p = parse_policy(policy_text("guiyang"))
    hz = Holder("h_3", "91330100716105852F", "HZ", "enterprise", "330100", None, 0)
    demand = Demand("h_3", "model_services", 10_000_000, None, "2026-01-01", "2026-12-31")
    assert decide(p, hz, None, demand, Standing(0, 0, 10**10, frozenset({"330100"}))).issued
    assert not decide(p, hz, None, demand, Standing(0, 0, 10**10, frozenset())).issued


def test_window_ids_and_bounds() -> None:
    from node.domain.windows import open_window, window_bounds, window_of

    p = parse_policy(policy_text())  # quarterly
    ms = parse_iso("2026-12-31T16:30:00Z")  # 2027-01-01 00:30 in Beijing
    assert window_of(p, ms) == "2027-Q1"
    start, end = window_bounds("2027-Q1")
    assert iso(start) == "2026-12-31T16:00:00.000Z" and iso(end) == "2027-03-31T16:00:00.000Z"
    assert window_bounds("2026-Q4")[1] == start
    for cycle, expected in (
        ("monthly", "2027-01"),
        ("weekly", "2026-W53"),
        ("daily", "2027-01-01"),
    ):
        q = parse_policy(policy_text(settlement_cycle=f'"{cycle}"'))
        w = window_of(q, ms)
        assert w == expected and window_bounds(w)[0] <= ms < window_bounds(w)[1]
    m = parse_policy(
        policy_text(settlement_cycle='"minutes"').replace(
            "settlement_grace_minutes", "settlement_window_minutes = 5\nsettlement_grace_minutes"
        )
    )
    w = window_of(m, ms)
    assert w == "2026-12-31T16:30:00.000Z/5m" and window_bounds(w) == (ms, ms + 300_000)
    nxt = open_window(m, ms, lambda x: x == w)
    assert window_bounds(nxt)[0] == ms + 300_000
    with pytest.raises(ValueError):
        window_bounds("2026-Q5")


def test_a_spend_code_names_its_issuing_region() -> None:
    from node.domain.spending import SpendCode

    assert SpendCode.parse("sac_330100_a-b_c") == SpendCode("330100", "a-b_c")
    for bad in ("sac_330100_", "sac_abc_x", "sac_33010²_x", "xyz_330100_x", "sac330100x", ""):
        assert SpendCode.parse(bad) is None, bad


def test_a_hold_id_says_which_kind_of_hold_it_names() -> None:
    from node.domain.spending import LOCAL_HOLD, REMOTE_HOLD, HoldRef
    from node.services.common import new_id

    assert HoldRef.parse(new_id(REMOTE_HOLD)).remote
    assert not HoldRef.parse(new_id(LOCAL_HOLD)).remote
    for other in ("", "rh", "rhx_1", "hd_rh_1", "RH_1"):
        assert not HoldRef.parse(other).remote, other


def test_key_states_follow_a_rotation() -> None:
    from node.domain.model import PeerKey, key_states

    old = PeerKey("k1", b"", 0, 0, False)
    new = PeerKey("k2", b"", 100, 0, False)
    assert key_states([old], 50) == {"k1": "current"}
    assert key_states([old, new], 50) == {"k1": "current", "k2": "not_yet_valid"}
    assert key_states([old, new], 150) == {"k1": "retiring", "k2": "current"}
    ended = PeerKey("k1", b"", 0, 200, False)
    assert key_states([ended, new], 250) == {"k1": "expired", "k2": "current"}
    revoked = PeerKey("k1", b"", 0, 0, True)
    assert key_states([revoked, new], 150) == {"k1": "revoked", "k2": "current"}
    # This node's own: the key it signs with is current, whatever the dates say.
    assert key_states([old, new], 150, current="k1") == {"k1": "current", "k2": "retiring"}
