"""The platform's words in Chinese (first) and English, and how it shows money and time.

Every label (kept in ``words``), every decision reason and every error code the pages can show has both languages
here; ``tests/test_web.py`` checks that none is missing. Money is yuan with fen (¥1,234.56),
times are China Standard Time (2026年12月2日 14:05 / 2 Dec 2026 14:05).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from node.domain.money import apply_ratio, percent, yuan
from node.domain.windows import CST
from node.web.words import WORDS

LANGS = ("zh", "en")

# Decision reason codes (node/domain/issuance.py), in plain words.
REASONS: dict[str, tuple[str, str]] = {
    "out_of_scope": ("该类别不属于智能算力，不予补贴", "Not intelligent compute: no subsidy"),
    "not_eligible_region": (
        "需求方不在本市（或联邦）注册，不符合申领条件",
        "Not registered where this programme applies",
    ),
    "dishonest": ("需求方在失信名单上", "The holder is on the dishonesty list"),
    "category_not_covered": (
        "本年度政策未覆盖该类主体",
        "This year's policy does not cover the holder's category",
    ),
    "provider_not_approved": ("服务商未获批准", "The provider is not approved"),
    "related_party": ("需求方与服务商为关联方", "Holder and provider are related parties"),
    "ratio": ("适用补贴比例", "Subsidy ratio applied"),
    "small_contract": ("小额合同企业适用更高比例", "Higher ratio for small contracts"),
    "by_ratio": ("按比例计算的补贴", "Subsidy by ratio"),
    "limited": ("受年度上限或预算限制", "Limited by the annual cap or the budget"),
    "cap_exhausted": ("本年度额度已用完", "This year's cap is used up"),
    "budget_exhausted": ("本年度预算已用完", "This year's budget is spent"),
    "amount_zero": ("补贴计算结果为零", "The subsidy truncates to zero"),
    "below_minimum": ("低于最低券面额，不予核发", "Below the minimum voucher: not issued"),
    "issued": ("已自动核发", "Issued automatically"),
}

# Error codes (node/errors.py) a form can meet, in plain words; others fall back to the
# English sentence the service gives.
ERRORS: dict[str, tuple[str, str]] = {
    "invalid_request": ("填写有误", "Something in the form is not right"),
    "unauthenticated": ("令牌无效或已吊销", "The token is unknown or revoked"),
    "too_many_attempts": (
        "登录失败次数过多，请稍后再试",
        "Too many failed sign-ins: wait a few minutes",
    ),
    "forbidden": ("无权进行此操作", "You may not do this"),
    "csrf": ("页面已过期，请重新提交", "The page expired: submit it again"),
    "not_found": ("找不到该记录", "Not found"),
    "unknown_compute_class": ("政策中没有该算力类别", "The policy has no such compute class"),
    "insufficient_balance": ("算力券余额不足", "The voucher's balance is too low"),
    "authorization_invalid": ("授权码无效", "The code is not valid"),
    "authorization_used": ("授权码已使用", "The code was already used"),
    "authorization_expired": (
        "授权码已失效（已过期或已被取消）",
        "The code is no longer valid (expired or cancelled)",
    ),
    "wrong_provider": ("该授权码不是给本服务商的", "The code is for another provider"),
    "order_already_subsidised": ("该订单已获补贴", "This order was already subsidised"),
    "compute_class_mismatch": (
        "算力类别与算力券不符",
        "The compute class does not match the voucher",
    ),
    "voucher_expired": ("算力券已过期", "The voucher has expired"),
    "voucher_not_active": ("算力券不可用", "The voucher is not active"),
    "hold_not_open": ("该冻结已结束", "The hold is closed"),
    "capture_exceeds_hold": ("确认金额超过冻结金额", "More than the hold"),
    "provider_not_approved": ("服务商未获批准", "The provider is not approved"),
    "out_of_scope": ("不属于补贴范围", "Out of scope"),
    "outbound_not_allowed": (
        "发券城市不允许在该城市使用",
        "The issuing city does not allow spending there",
    ),
    "inbound_not_allowed": (
        "本市不接受该城市的算力券",
        "This city does not accept that city's vouchers",
    ),
    "exposure_cap_exceeded": ("超出城市间结算上限", "Over the exposure cap between the cities"),
    "policy_missing": ("本年度政策尚未加载", "This year's policy is not loaded"),
    "invalid_uscc": (
        "统一社会信用代码有误（18 位，校验位按 GB 32100-2015 检查）",
        "The unified social credit code is not valid",
    ),
    "already_exists": ("该主体已登记", "Already registered"),
    "unknown_category": ("本年度政策中没有该主体类别", "The policy has no such category"),
    "category_mismatch": (
        "主体类别与信用代码不符（企业以 91 开头，事业单位以 12 开头，社会组织以 52 开头）",
        "The category does not match the credit code",
    ),
    "provider_not_found": ("找不到该服务商", "No such provider"),
    "holder_not_found": ("找不到该需求方", "No such holder"),
    "offer_not_found": ("找不到该报价", "No such offer"),
    "offer_withdrawn": ("该报价已撤回", "The offer was withdrawn"),
    "offer_expired": ("该报价已过期", "The offer has expired"),
    "offer_changed": (
        "报价已更新，请按新条件重新申请",
        "The offer changed: ask again at its terms",
    ),
    "order_not_found": ("找不到该订购申请", "No such order request"),
    "order_decided": ("该订购申请已处理", "This order request was already answered"),
}

# What needs attention (node/domain/attention.py), with its figures.
NOTICES: dict[str, tuple[str, str]] = {
    "budget_low": (
        "{year} 年度预算余额 {remaining}，不足预算 {budget} 的 10%",
        "{year}: {remaining} of the budget left, under 10% of {budget}",
    ),
    "exposure_near_cap": (
        "对 {peer} 的本期应付 {owed} 已超过结算上限 {cap} 的 80%",
        "Owed to {peer} this window: {owed}, over 80% of the cap {cap}",
    ),
    "outbox_growing": (
        "发往 {peer} 的消息积压 {count} 条",
        "{count} messages waiting for {peer}",
    ),
    "outbox_stuck": (
        "{peer} 已 {seconds} 秒未答复最早的消息",
        "{peer} has not answered its oldest message for {seconds} s",
    ),
    "disputes_open": (
        "有 {count} 项城市间对账差异未解决",
        "{count} open dispute(s) between cities",
    ),
    "holds_overdue": ("有 {count} 笔冻结已过期未释放", "{count} hold(s) past their expiry"),
    "payouts_overdue": (
        "最早一笔未兑付的结算单已过 {days} 天",
        "The oldest unpaid payout statement is {days} days old",
    ),
    "settlement_overdue": (
        "最早一期城市间款项已 {days} 天未结清",
        "The oldest window between cities is unsettled after {days} days",
    ),
    "card_unacknowledged": (
        "{peers} 尚未确认本市新的节点卡（密钥轮换进行中）",
        "{peers} have not acknowledged our new card (a key rotation is under way)",
    ),
}

CATEGORIES: dict[str, tuple[str, str]] = {
    "enterprise": ("企业", "Enterprise"),
    "startup": ("初创及中小企业", "Start-up or SME"),
    "university": ("高校", "University"),
    "research_institute": ("科研院所", "Research institute"),
}

KINDS: dict[str, tuple[str, str]] = {
    "computing_centre": ("智算中心", "Intelligent computing centre"),
    "matchmaking_partner": ("算力撮合合作伙伴", "Compute-matchmaking partner"),
}

CLASSES: dict[str, tuple[str, str]] = {
    "model_services": ("模型服务", "Model services"),
    "domestic_chips": ("国产芯片算力", "Domestic chips"),
    "other_compute": ("其他智能算力", "Other compute"),
    "training": ("训练算力", "Training"),
    "inference": ("推理算力", "Inference"),
}

STATES: dict[str, tuple[str, str]] = {
    "active": ("有效", "active"),
    "expired": ("已过期", "expired"),
    "revoked": ("已收回", "revoked"),
    "exhausted": ("已用完", "used up"),
    "held": ("已冻结", "held"),
    "captured": ("已使用", "captured"),
    "voided": ("已撤销", "voided"),
    "pending": ("等待答复", "pending"),
    "refused": ("被拒绝", "refused"),
    "open": ("未结束", "open"),
    "closed": ("已关闭", "closed"),
    "statements_agreed": ("对账一致", "statements agreed"),
    "netted": ("已轧差", "netted"),
    "settled": ("已结清", "settled"),
    "issued": ("已核发", "issued"),
    "declined": ("未核发", "declined"),
    "approved": ("已批准", "approved"),
    "suspended": ("已暂停", "suspended"),
    "confirmed": ("已确认", "confirmed"),
    "advised": ("已通知", "advised"),
    "awaiting_confirmation": ("待确认", "awaiting confirmation"),
    "disputed": ("有争议", "disputed"),
    "sent": ("已发送待确认", "sent"),
    "key_current": ("当前使用", "current"),
    "call_answered": ("已答复", "answered"),
    "call_unreachable": ("无法连接", "unreachable"),
    "wanted_hold": ("冻结", "the hold"),
    "wanted_redeem": ("冻结并确认", "the redemption"),
    "wanted_capture": ("确认使用", "the capture"),
    "wanted_void": ("撤销", "the void"),
    "key_retiring": ("轮换重叠期", "retiring (overlap)"),
    "key_expired": ("已过期", "expired"),
    "key_revoked": ("已吊销", "revoked"),
    "key_not_yet_valid": ("尚未生效", "not yet valid"),
    "agreed": ("双方一致", "agreed"),
    "statement_mismatch": ("对账不一致", "statements differ"),
    "statement_already_agreed": (
        "对方在已一致后又发来不同对账单",
        "a different statement after agreement",
    ),
}


def pick(pair: tuple[str, str], lang: str) -> str:
    return pair[0] if lang == "zh" else pair[1]


def word(key: str, lang: str) -> str:
    return pick(WORDS[key], lang)


def fen(amount: int | None) -> str:
    return "—" if amount is None else yuan(int(amount))


def day(at: int, lang: str) -> str:
    """A date in China Standard Time: 2026年12月2日, or 2 Dec 2026."""
    t = dt.datetime.fromtimestamp(at / 1000, CST)
    return f"{t.year}年{t.month}月{t.day}日" if lang == "zh" else f"{t.day} {t:%b %Y}"


def when(at: int | str | None, lang: str) -> str:
    """China Standard Time, as people there write it; ``at`` in ms or ISO 8601 (the API's)."""
    if not at:
        return "—"
    if isinstance(at, str):
        t = dt.datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(CST)
    else:
        t = dt.datetime.fromtimestamp(at / 1000, CST)
    if lang == "zh":
        return f"{t.year}年{t.month}月{t.day}日 {t:%H:%M}"
    return f"{t.day} {t:%b %Y %H:%M}"


def named(table: dict[str, tuple[str, str]], code: str, lang: str) -> str:
    pair = table.get(code)
    return pick(pair, lang) if pair else code


def reason_sentence(reason: dict[str, Any], decision: dict[str, Any], lang: str) -> str:
    """A decision's reason in plain words, with its figures, in the page's language. The
    figures come from the decision itself (ratio, estimate, amount), so the Chinese sentence
    says exactly what the recorded English one says."""
    code, message = str(reason["code"]), str(reason["message"])
    label = named(REASONS, code, lang)
    if lang != "zh":
        return f"{label}: {message}"
    ratio, estimate = int(decision["ratio_bp"]), int(decision.get("estimated_amount_fen") or 0)
    if code == "ratio":
        return f"{label}：{named(CLASSES, str(decision['compute_class']), lang)} {percent(ratio)}"
    if code == "by_ratio":
        return (
            f"{label}：{yuan(estimate)} × {percent(ratio)} = {yuan(apply_ratio(estimate, ratio))}"
        )
    if code == "limited":
        what = "年度剩余额度" if "cap" in message else "剩余预算"
        return f"受{what}限制，核发 {yuan(int(decision['amount_fen']))}"
    return label


# What a window still misses (node/domain/clearing.py, window_progress), in Chinese: the domain
# says it in English for the API; the pages say it in the page's language.
MISSING_ZH: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"statements not yet countersigned: (.+)"), "尚未会签的对账单：{0}"),
    (
        re.compile(r"statements not yet received from every acquirer"),
        "尚未收到所有收单城市的对账单",
    ),
    (re.compile(r"payout statements not yet signed"), "服务商结算单尚未签发"),
    (
        re.compile(r"statement with (\d{6}) \((\d+) fen\) is in no transfer"),
        "与 {0} 的对账单（{1} 分）尚未付款结算",
    ),
    (
        re.compile(r"payout to (\S+): (\d+) of (\d+) fen unpaid"),
        "应付服务商 {0}：{2} 分中 {1} 分未兑付",
    ),
    (
        re.compile(r"transfer for the statement with (\d{6}) is (\w+)"),
        "与 {0} 的城市间转账：{1}",
    ),
)


def missing(text: str, lang: str) -> str:
    if lang != "zh":
        return text
    for pattern, zh in MISSING_ZH:
        found = pattern.fullmatch(text)
        if found:
            parts = [named(STATES, g, lang) for g in found.groups()]
            return zh.format(*parts)
    return text


def notice_text(notice: dict[str, Any], lang: str) -> str:
    """A notice in words, its money figures (keys naming fen) as yuan."""
    money = ("remaining", "budget", "owed", "cap")
    figures = {k: fen(v) if k in money else v for k, v in notice["figures"].items()}
    return pick(NOTICES[notice["code"]], lang).format(**figures)


# A policy file's problems (node/domain/policy.py, "key.path: problem") in Chinese; the key
# path stays as written in the file.
PROBLEMS_ZH: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"missing"), "缺少此项"),
    (re.compile(r"unknown key"), "未知的项（是否拼写有误？）"),
    (re.compile(r"must be a table"), "应为表（[…]）"),
    (re.compile(r"must be an integer, got (.+)"), "应为整数，实际为 {0}"),
    (re.compile(r"must be (-?\d+)\.\.(-?\d+), got (.+)"), "应在 {0} 至 {1} 之间，实际为 {2}"),
    (re.compile(r"must be a string, got (.+)"), "应为字符串，实际为 {0}"),
    (re.compile(r"must be one of (.+), got (.+)"), "应为以下之一：{0}，实际为 {1}"),
    (re.compile(r"must be a list of strings"), "应为字符串列表"),
    (
        re.compile(r"must be a 6-digit GB/T 2260 code, got (.+)"),
        "应为 6 位行政区划代码，实际为 {0}",
    ),
    (re.compile(r"is an excluded service, not compute"), "属于排除的服务，不是算力"),
    (re.compile(r"(.+) is not this node's region (.+)"), "{0} 不是本节点的地区 {1}"),
)


def policy_problem(problem: str, lang: str) -> str:
    """The problem part of ``key.path: problem`` in the page's language."""
    text = problem.split(":", 1)[1].strip() if ":" in problem else problem
    if lang != "zh":
        return text
    for pattern, zh in PROBLEMS_ZH:
        found = pattern.fullmatch(text)
        if found:
            return zh.format(*found.groups())
    return text


def helpers(lang: str) -> dict[str, Any]:
    """What every template may call."""
    return {
        "lang": lang,
        "t": lambda key: word(key, lang),
        "fen": fen,
        "pct": percent,
        "when": lambda ms: when(ms, lang),
        "day": lambda ms: day(ms, lang),
        "cls": lambda code: named(CLASSES, code, lang),
        "t_category": lambda code: named(CATEGORIES, code, lang),
        "t_kind": lambda code: named(KINDS, code, lang),
        "st": lambda code: named(STATES, code, lang),
        "reason": lambda code: named(REASONS, code, lang),
        "because": lambda r, d: reason_sentence(r, d, lang),
        "missing_text": lambda text: missing(text, lang),
        "say_notice": lambda n: notice_text(n, lang),
        "problem_text": lambda p: policy_problem(p, lang),
    }
