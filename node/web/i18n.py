"""The platform's words in Chinese (first) and English, and how it shows money and time.

Every label, every decision reason and every error code the pages can show has both languages
here; ``tests/test_web.py`` checks that none is missing. Money is yuan with fen (¥1,234.56),
times are China Standard Time (2026年12月2日 14:05 / 2 Dec 2026 14:05).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from node.domain.money import apply_ratio, percent, yuan
from node.domain.windows import CST

LANGS = ("zh", "en")

WORDS: dict[str, tuple[str, str]] = {
    # frame
    "platform": ("算力券公共服务平台", "Compute voucher service platform"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "token": ("访问令牌", "Access token"),
    "token_hint": (
        "城市运营方发放的令牌，以 slo_、slh_ 或 slp_ 开头",
        "The token the city's operators gave you, starting slo_, slh_ or slp_",
    ),
    "language": ("English", "中文"),
    "link_hint": (
        "这是城市运营方发给您的一次性登录链接，点击下方按钮登录。",
        "This is a one-time sign-in link from the city's operators: sign in with the button.",
    ),
    "skip": ("跳到正文", "Skip to content"),
    "errors_title": ("请更正以下问题", "There is a problem"),
    "error_title": ("无法完成", "This could not be done"),
    "back": ("返回", "Back"),
    "home": ("首页", "Home"),
    "role_holder": ("算力需求方", "Holder"),
    "role_provider": ("算力服务商", "Provider"),
    "role_operator": ("城市运营方", "City operator"),
    # holder
    "my_vouchers": ("我的算力券", "My vouchers"),
    "voucher": ("算力券", "Voucher"),
    "face_value": ("面额", "Face value"),
    "balance": ("可用余额", "Available"),
    "held": ("已冻结", "Held"),
    "captured": ("已使用", "Used"),
    "expires": ("有效期至", "Expires"),
    "ratio": ("补贴比例", "Subsidy ratio"),
    "issuer_city": ("发券城市", "Issuing city"),
    "state": ("状态", "State"),
    "no_vouchers": (
        "还没有算力券。提交算力需求即可自动核发。",
        "No vouchers yet. Submit a compute demand to get one.",
    ),
    "submit_demand": ("提交算力需求", "Submit a compute demand"),
    "compute_class": ("算力类别", "Compute class"),
    "estimate": ("预计合同金额（元）", "Estimated contract amount (yuan)"),
    "provider_if_known": ("服务商编号（如已确定）", "Provider id (if known)"),
    "period_start": ("开始日期", "Start date"),
    "period_end": ("结束日期", "End date"),
    "submit": ("提交", "Submit"),
    "decision": ("核发结果", "Decision"),
    "issued": ("已核发", "Issued"),
    "declined": ("未核发", "Declined"),
    "amount": ("金额", "Amount"),
    "reasons": ("依据", "Reasons"),
    "authorize": ("授权服务商使用", "Authorize a provider"),
    "provider_id": ("服务商编号", "Provider id"),
    "provider_region": (
        "服务商所在城市代码（外地服务商填写）",
        "Provider's city code (for another city's provider)",
    ),
    "max_amount": ("最高金额（元）", "Maximum (yuan)"),
    "valid_days": ("有效天数", "Valid for (days)"),
    "code_once": (
        "一次性授权码（只显示这一次，请交给服务商）",
        "One-time code (shown only now: give it to the provider)",
    ),
    "authorizations": ("授权", "Authorizations"),
    "holds": ("冻结与使用记录", "Holds and captures"),
    "cap": ("年度额度", "Yearly cap"),
    "cap_used": ("已用额度", "Cap used"),
    "cap_left": ("剩余额度", "Cap left"),
    "qr_code": ("二维码", "QR code"),
    "cancel": ("取消授权", "Cancel"),
    "cancelled": ("授权已取消", "Authorization cancelled"),
    "statement": ("年度补贴明细", "Yearly statement"),
    # provider
    "redeem": ("核销算力券", "Redeem a voucher"),
    "auth_code": ("需求方的授权码", "The holder's code"),
    "order_id": ("订单编号", "Order id"),
    "order_amount": ("订单金额（元）", "Order amount (yuan)"),
    "hold_only": ("仅冻结（交付后再确认）", "Hold only (capture after delivery)"),
    "redeem_now": ("立即核销", "Redeem now"),
    "place_hold": ("冻结", "Place hold"),
    "capture": ("确认使用", "Capture"),
    "void": ("撤销", "Void"),
    "subsidy": ("补贴", "Subsidy"),
    "pending_peer": ("等待发券城市答复", "Waiting for the issuing city"),
    "payouts": ("结算单与兑付", "Payout statements and payments"),
    "paid": ("已兑付", "Paid"),
    "unpaid": ("未兑付", "Unpaid"),
    "window": ("结算周期", "Window"),
    "payments": ("兑付记录", "Payments"),
    "value_date": ("起息日", "Value date"),
    "advice": ("兑付通知（已签名）", "Signed advice"),
    "download": ("下载", "Download"),
    # operator
    "overview": ("总览", "Overview"),
    "budget": ("年度预算", "Annual budget"),
    "committed": ("已承诺", "Committed"),
    "remaining": ("剩余", "Remaining"),
    "flows": ("算力券资金流向", "Quota flows"),
    "flows_hint": (
        "本年度预算 → 主体类别 → 已使用（本市或外地服务商）、未使用或已收回，数据来自与账本同步记录的累计数。",
        "This year's budget → holder categories → used (here or by other cities' providers), not yet used or reclaimed, from running totals kept with the books.",
    ),
    "decisions": ("核发记录", "Decisions"),
    "peers": ("联邦城市", "Federation peers"),
    "settlement": ("结算", "Settlement"),
    "transfers": ("城市间转账", "Transfers between cities"),
    "missing": ("待完成", "Still missing"),
    "providers": ("服务商", "Providers"),
    "holders": ("需求方", "Holders"),
    "policy": ("年度政策", "Policy"),
    "policy_loaded": ("政策已生效", "Policy loaded"),
    "policy_check": ("请核对变更", "Check the changes"),
    "policy_key": ("项目", "Key"),
    "policy_now": ("现行", "Now"),
    "policy_new": ("新政策", "New"),
    "policy_same": ("与现行政策相同", "The same as the current policy"),
    "policy_confirm": ("确认并生效", "Confirm and load"),
    "policy_upload": ("上传新政策", "Upload a new policy"),
    "policy_toml": ("政策文件（TOML）", "Policy file (TOML)"),
    "policy_check_button": ("检查", "Check"),
    "policy_current": ("现行政策", "Current policy"),
    "policy_problems": ("政策文件中的问题", "Problems in the file"),
    "line": ("行", "Line"),
    "problem": ("问题", "Problem"),
    "budget_move": (
        "预算变动（生效后记入预算资金池）",
        "The budget moves (booked to the pool on loading)",
    ),
    "register_holder": ("登记需求方", "Register a holder"),
    "registered": ("已登记", "registered"),
    "uscc": ("统一社会信用代码", "Unified social credit code"),
    "uscc_hint": (
        "18 位，校验位按 GB 32100-2015 检查",
        "18 characters; the check character is verified (GB 32100-2015)",
    ),
    "category": ("主体类别", "Category"),
    "holder_region": ("注册地区代码", "Registered region code"),
    "holder_region_hint": ("默认取自信用代码", "By default, from the credit code"),
    "signin_link": ("发送登录链接", "Sign-in link"),
    "signin_link_hint": (
        "一次性登录链接（一天内有效，只显示这一次），请发给该需求方：",
        "A one-time sign-in link (valid a day, shown only now): send it to the holder:",
    ),
    "audit": ("审计记录", "Audit trail"),
    "name": ("名称", "Name"),
    "change": ("变更", "Change"),
    "approve": ("批准", "Approve"),
    "suspend": ("暂停", "Suspend"),
    "reason": ("原因", "Reason"),
    "city": ("城市", "City"),
    "endpoint": ("地址", "Endpoint"),
    "fingerprint": ("证书指纹", "Fingerprint"),
    "card_acknowledged": ("已确认本市节点卡", "Has our card"),
    "oldest": ("最早未答消息", "Oldest unanswered"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "actor": ("操作人", "Who"),
    "action": ("操作", "Action"),
    "subject": ("对象", "Subject"),
    "more": ("更多", "More"),
    "all": ("全部", "All"),
    "windows": ("结算周期状态", "Windows"),
    "transfers_due": ("应结算的城市间款项", "Due between cities"),
    "statements": ("份对账单", "statement(s)"),
    "record_transfer": ("登记已付款并通知对方", "Record the transfer and advise"),
    "peer_pays": (
        "对方城市付款，收到通知后在下方确认。",
        "The partner city pays: confirm below once advised.",
    ),
    "confirm_receipt": ("确认收到", "Confirm receipt"),
    "dispute": ("提出异议", "Dispute"),
    "filter": ("筛选", "Filter"),
    "export_csv": ("导出 CSV", "Export CSV"),
    "close_window": ("立即关闭当前结算周期", "Close the current window now"),
    "pay": ("兑付", "Pay"),
    "reference": ("银行流水号", "Bank reference"),
    "holder": ("需求方", "Holder"),
    "outcome": ("结果", "Outcome"),
    "time": ("时间", "Time"),
    "backlog": ("待发消息", "Backlog"),
    "none": ("无", "None"),
    "pair_statements": ("城市间对账单", "Statements between cities"),
    "acquirer_city": ("受理城市", "Acquiring city"),
    "records": ("笔数", "Records"),
    "disputes": ("未解决的对账差异", "Open disputes"),
    "disputes_hint": (
        "双方账目不一致：逐笔核对签名回执后，由账目有误的一方更正，再次对账一致后自动解决。",
        "The two cities' books differ: check the signed receipts record by record; once the side in error corrects its books and the statements agree, the dispute closes by itself.",
    ),
    "kind": ("类型", "Kind"),
    "ours": ("本市账目", "Our books"),
    "theirs": ("对方账目", "Their books"),
    "differing": ("不一致笔数", "Records differing"),
    "netting": ("全联邦多边轧差", "Federation netting"),
    "netting_hint": (
        "根据各城市已双方签署的对账单计算，仅供参考：城市之间按双边净额结算。",
        "Computed from every city's countersigned statements, for information: cities settle bilaterally.",
    ),
    "netting_link_hint": (
        "需要询问每个联邦城市，可能需要几秒钟",
        "asks every partner city, so it can take a few seconds",
    ),
    "unreachable": ("无法联系的城市", "Cities that did not answer"),
    "rejected_statements": ("签名无效而未计入的对账单", "Statements left out for a bad signature"),
    "positions": ("各城市净头寸", "Net position of each city"),
    "net_position": ("净头寸（正数为应收）", "Net position (positive: to receive)"),
    "us": ("本市", "us"),
    "netting_transfers": ("最少转账方案", "Fewest transfers"),
    "agreed_statements": ("计入的对账单", "Statements counted"),
    "netting_id": ("轧差编号", "Netting id"),
    "dishonesty": ("失信名单", "Dishonesty list"),
    "dishonesty_hint": (
        "名单上的主体提交算力需求时不予核发（已核发的算力券不受影响）。年度政策文件中的名单同样有效。",
        "Demands from codes on the list are declined (vouchers already issued are not affected). The policy file's own list applies too.",
    ),
    "dishonesty_source": ("来源与文号", "Source and reference"),
    "add_to_list": ("加入名单", "Add to the list"),
    "remove_from_list": ("移出名单", "Remove"),
    "listed": ("已加入失信名单", "added to the list"),
    "unlisted": ("已移出失信名单", "removed from the list"),
    "in_policy": (
        "列于年度政策文件，修改需上传新政策",
        "In the policy file: change it with a new policy",
    ),
    "attention": ("需要关注", "Needs attention"),
    "reverse": ("冲正", "Reverse"),
    "reversed": ("已冲正", "Reversed"),
    "reversal_of": ("冲正", "reverses"),
    "all_well": ("目前没有需要处理的事项。", "Nothing needs attention now."),
    "captured_here": ("本市服务商使用", "Used at our providers"),
    "captured_elsewhere": ("外地服务商使用", "Used in other cities"),
    "by_month": ("按月核发与使用", "Issued and used by month"),
    "as_table": ("以表格查看", "As a table"),
    "month": ("月份", "Month"),
    "issued_col": ("核发", "Issued"),
    "by_category": ("按主体类别", "By holder category"),
    "vouchers_n": ("券数", "Vouchers"),
    "by_district": (
        "按地区核发（信用代码中的行政区划）",
        "Issued by district (from the credit code)",
    ),
    "district": ("行政区划代码", "District code"),
    "other": ("其他", "Other"),
    "last_call": ("最近一次通信", "Last exchange"),
    "we_owe": ("本市应付", "We owe"),
    "owed_to_us": ("应收", "Owed to us"),
    "register_provider": ("登记服务商", "Register a provider"),
    "provider_kind": ("服务商类型", "Kind of provider"),
    "provider_home_region": ("所在地区代码", "Region code"),
    "related": ("关联方", "Related parties"),
    "related_hint": (
        "关联方的统一社会信用代码，每行一个（关联交易不予补贴）",
        "Related parties' credit codes, one per line (related-party deals get no subsidy)",
    ),
    "approve_now": ("登记后立即批准", "Approve at once"),
    "save": ("保存", "Save"),
    "signin_link_hint_provider": (
        "一次性登录链接（一天内有效，只显示这一次），请发给该服务商：",
        "A one-time sign-in link (valid a day, shown only now): send it to the provider:",
    ),
    "awaiting_issuer": ("等待发券城市答复", "Waiting for the issuing city"),
    "awaiting_issuer_hint": (
        "本市节点会持续重发，直到发券城市答复；无需重复提交。",
        "Our node keeps resending until the issuing city answers: there is no need to submit again.",
    ),
    "waiting_for": ("等待答复的操作", "Waiting for"),
    "since": ("提交时间", "Since"),
    "key_rotation": ("签名密钥轮换", "Signing keys and their rotation"),
    "key_rotation_hint": (
        "新密钥生效后，旧密钥在所有联邦城市确认新节点卡之前一直有效，确认后再进入约定的重叠期。",
        "After a rotation the old key stays valid until every partner city has acknowledged the new card, then for the overlap asked for.",
    ),
    "our_keys": ("本市密钥", "Our keys"),
    "key_id": ("密钥编号", "Key id"),
    "valid_from": ("生效", "Valid from"),
    "valid_until": ("失效", "Valid until"),
    "no_end": ("未设定", "no end yet"),
    "card_not_acknowledged": (
        "尚未确认本市新节点卡的城市",
        "Cities that have not acknowledged our new card",
    ),
}

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
