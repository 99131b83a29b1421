"""The money invariants (BRIEF §6), verified from the books themselves.

``check_books`` recomputes every balance from the ledger's transfers and compares it with the
cached columns, the policy's budgets and caps, and the holds' lifetimes. It returns the list of
violations, each a sentence; an empty list means the books balance. ``suanli check`` runs it,
and every money-moving test asserts it comes back empty.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict

from node.domain.policy import Policy
from node.keys import VOUCHER_TAG, verify
from node.store import ledger
from node.store import totals as voucher_totals


def check_books(
    conn: sqlite3.Connection,
    own_region: str,
    policies: dict[int, Policy],
    now_ms: int,
    sweep_grace_ms: int,
    public_keys: dict[str, bytes],
) -> list[str]:
    problems: list[str] = []
    add = problems.append

    # 1. The ledger balances, and the cached balances are what the transfers say.
    derived: dict[str, int] = defaultdict(int)
    totals: dict[tuple[str, str, str], int] = defaultdict(int)
    cls = ledger.account_class
    for kind, source, dest, amount in conn.execute(
        "SELECT kind, source, dest, amount_fen FROM ledger"
    ):
        if amount <= 0:
            add(f"ledger transfer {source}→{dest} has non-positive amount {amount}")
        derived[source] -= amount
        derived[dest] += amount
        totals[(kind, cls(source), cls(dest))] += amount
    # The running totals the quota-flow gauges read are what the transfers say.
    kept = {(k, s, d): fen for k, s, d, fen in ledger.flows(conn)}
    for key in set(totals) | set(kept):
        if totals.get(key, 0) != kept.get(key, 0):
            add(f"flow {'/'.join(key)}: kept {kept.get(key, 0)} ≠ transfers {totals.get(key, 0)}")
    cached = {name: bal for name, bal in conn.execute("SELECT name, balance_fen FROM accounts")}
    if sum(cached.values()) != 0:
        add(f"account balances sum to {sum(cached.values())}, not 0")
    for name in set(derived) | set(cached):
        if derived.get(name, 0) != cached.get(name, 0):
            add(f"account {name}: cached {cached.get(name, 0)} ≠ transfers {derived.get(name, 0)}")
        if not ledger.may_be_negative(name) and cached.get(name, 0) < 0:
            add(f"account {name} is negative: {cached[name]}")

    # 1b. The running totals the operators' overview reads are what the vouchers and holds say
    # (a total that fell to zero stays as a row: compared as zero).
    have, want = voucher_totals.kept(conn), voucher_totals.recompute(conn)
    for total in sorted(set(have) | set(want)):
        if have.get(total, (0, 0)) != want.get(total, (0, 0)):
            add(
                f"voucher total {'/'.join(map(str, total))}: kept {have.get(total, (0, 0))} "
                f"≠ vouchers and holds {want.get(total, (0, 0))}"
            )

    # 2. Vouchers: cached columns agree with the ledger and with their holds.
    holds_by_voucher: dict[str, tuple[int, int]] = {}
    for voucher_id, held, captured in conn.execute(
        "SELECT voucher_id, COALESCE(SUM(CASE WHEN state = 'held' THEN amount_fen END), 0), "
        "SUM(captured_fen) FROM holds GROUP BY voucher_id"
    ):
        holds_by_voucher[voucher_id] = (held, captured)
    issued_by_year: dict[int, int] = defaultdict(int)
    used_by_holder: dict[tuple[str, int], int] = defaultdict(int)
    for row in conn.execute("SELECT * FROM vouchers"):
        vid = row["id"]
        parts = (row["available_fen"], row["held_fen"], row["captured_fen"], row["reclaimed_fen"])
        if min(parts) < 0:
            add(f"voucher {vid} has a negative balance column {parts}")
        if sum(parts) != row["face_fen"]:
            add(
                f"voucher {vid}: available+held+captured+reclaimed {sum(parts)} ≠ face {row['face_fen']}"
            )
        if cached.get(ledger.voucher_account(vid), 0) != row["available_fen"]:
            add(
                f"voucher {vid}: available {row['available_fen']} ≠ ledger {cached.get(ledger.voucher_account(vid), 0)}"
            )
        held, captured = holds_by_voucher.get(vid, (0, 0))
        if held != row["held_fen"] or captured != row["captured_fen"]:
            add(
                f"voucher {vid}: held/captured {row['held_fen']}/{row['captured_fen']} ≠ holds {held}/{captured}"
            )
        if row["state"] != "active" and row["available_fen"] + row["held_fen"] != 0:
            add(
                f"voucher {vid} is {row['state']} but still has {row['available_fen'] + row['held_fen']} fen"
            )
        public = public_keys.get(row["key_id"])
        if public is None or not verify(
            public, VOUCHER_TAG, bytes(row["record"]), bytes(row["signature"])
        ):
            add(f"voucher {vid}: signature does not verify with key {row['key_id']}")
        net = row["face_fen"] - row["reclaimed_fen"]
        issued_by_year[row["fiscal_year"]] += net
        used_by_holder[(row["holder_id"], row["fiscal_year"])] += net

    # 3. Holds: an open hold's account holds its amount, a closed one's is empty; none overdue.
    for row in conn.execute("SELECT id, state, amount_fen, captured_fen, expires_at FROM holds"):
        balance = cached.get(ledger.hold_account(row["id"]), 0)
        expected = row["amount_fen"] if row["state"] == "held" else 0
        if balance != expected:
            add(f"hold {row['id']} ({row['state']}): account {balance} ≠ {expected}")
        if row["captured_fen"] > row["amount_fen"] or (
            row["state"] != "captured" and row["captured_fen"]
        ):
            add(
                f"hold {row['id']}: captured {row['captured_fen']} does not fit {row['state']} {row['amount_fen']}"
            )
        if row["state"] == "held" and now_ms > row["expires_at"] + sweep_grace_ms:
            add(f"hold {row['id']} is still open past its expiry plus the sweep interval")

    # 4. Each capture is booked exactly once, to whoever is owed: a local provider, or the
    #    acquiring city (due:<region>); on the acquirer side, from the issuing city to the provider.
    owed: dict[str, int] = defaultdict(int)
    for hold_id, region, provider_id, captured, bookings, booked, dest in conn.execute(
        "SELECT h.id, h.acquirer_region, h.provider_id, h.captured_fen, COUNT(l.seq), "
        "COALESCE(SUM(l.amount_fen), 0), MAX(l.dest) "
        "FROM holds h LEFT JOIN ledger l ON l.ref = h.id AND l.kind = 'capture' "
        "WHERE h.state = 'captured' GROUP BY h.id"
    ):
        account = ledger.payable(provider_id) if region == own_region else ledger.due(region)
        if bookings != 1 or booked != captured or dest != account:
            add(
                f"hold {hold_id}: captured {captured} booked {bookings} times for {booked} to {dest}"
            )
        owed[account] += captured
    for hold_id, issuer, provider_id, captured, bookings, booked in conn.execute(
        "SELECT r.id, r.issuer_region, r.provider_id, r.captured_fen, COUNT(l.seq), COALESCE(SUM(l.amount_fen), 0) "
        "FROM remote_holds r LEFT JOIN ledger l ON l.ref = r.id AND l.kind = 'remote_capture' "
        "WHERE r.state = 'captured' GROUP BY r.id"
    ):
        if bookings != 1 or booked != captured:
            add(f"remote hold {hold_id}: captured {captured} booked {bookings} times for {booked}")
        owed[ledger.payable(provider_id)] += captured
        owed[ledger.issuer(issuer)] -= captured
    # 4a. Each payment to a provider (兑付) and each reversal is booked once, between its
    #     payable and paid accounts; no payout statement is paid beyond its total.
    for pay_id, kind, provider_id, amount, bookings, booked, source in conn.execute(
        "SELECT m.id, m.kind, m.provider_id, m.amount_fen, COUNT(l.seq), "
        "COALESCE(SUM(l.amount_fen), 0), MAX(l.source) FROM payments m "
        "LEFT JOIN ledger l ON l.ref = m.id AND l.kind IN ('payment', 'payment_reversal') "
        "GROUP BY m.id"
    ):
        paying = kind == "payment"
        expected = ledger.payable(provider_id) if paying else ledger.paid(provider_id)
        if bookings != 1 or booked != amount or source != expected:
            add(f"{kind} {pay_id}: {amount} booked {bookings} times for {booked} from {source}")
        signed = amount if paying else -amount
        owed[ledger.payable(provider_id)] -= signed
        owed[ledger.paid(provider_id)] += signed
    for window_id, provider_id, total, paid in conn.execute(
        "SELECT p.window_id, p.provider_id, p.total_fen, COALESCE(SUM(CASE m.kind "
        "WHEN 'payment' THEN m.amount_fen ELSE -m.amount_fen END), 0) FROM payouts p "
        "JOIN payments m ON m.window_id = p.window_id AND m.provider_id = p.provider_id "
        "GROUP BY p.window_id, p.provider_id"
    ):
        if not 0 <= paid <= total:
            add(f"payout {window_id}/{provider_id}: {paid} paid of {total}")
    # 4a'. Each confirmed transfer between cities settles the statements it holds, once: what
    #      this city owed on them leaves due:<peer>, what it was owed reaches issuer:<peer>,
    #      and cleared:<peer> moves by the net, which is the transfer's amount (out: paid, in:
    #      received). A transfer not confirmed has booked nothing.
    for tid, peer, direction, amount, state in conn.execute(
        "SELECT id, peer, direction, amount_fen, state FROM city_transfers"
    ):
        covered = conn.execute(
            "SELECT s.issuer, s.total_fen FROM statement_coverage c JOIN statements s "
            "ON s.issuer = c.issuer AND s.acquirer = c.acquirer AND s.window_id = c.window_id "
            "WHERE c.transfer_id = ?",
            (tid,),
        ).fetchall()
        bookings = conn.execute(
            "SELECT source, dest, amount_fen FROM ledger WHERE kind = 'clearing' AND ref = ?",
            (tid,),
        ).fetchall()
        if state != "confirmed":
            if bookings:
                add(f"transfer {tid} is {state} but booked {len(bookings)} settlements")
            continue
        we_owed = sum(t for i, t in covered if i == own_region)
        owed_us = sum(t for i, t in covered if i != own_region)
        if we_owed - owed_us != (amount if direction == "out" else -amount):
            add(f"transfer {tid}: {direction} {amount} fen ≠ the net of its statements")
        expected = sorted(
            [
                (ledger.due(peer), ledger.cleared(peer), t)
                for i, t in covered
                if i == own_region and t
            ]
            + [
                (ledger.cleared(peer), ledger.issuer(peer), t)
                for i, t in covered
                if i != own_region and t
            ]
        )
        if sorted(tuple(b) for b in bookings) != expected:
            add(
                f"transfer {tid}: its settlement is booked {len(bookings)} times, not once per statement"
            )
        owed[ledger.due(peer)] -= we_owed
        owed[ledger.issuer(peer)] += owed_us
        owed[ledger.cleared(peer)] += we_owed - owed_us
    prefixes = ("payable:", "paid:", "due:", "issuer:", "cleared:")
    for name in set(owed) | {n for n in cached if n.startswith(prefixes)}:
        if cached.get(name, 0) != owed.get(name, 0):
            add(
                f"account {name}: {cached.get(name, 0)} ≠ captures less payments {owed.get(name, 0)}"
            )

    # 4b. Nothing in flight is lost: a pending remote hold, or one with a wanted capture or
    #     void, has a message in the outbox still being sent.
    for (hold_id,) in conn.execute(
        "SELECT r.id FROM remote_holds r WHERE (r.state = 'pending' OR r.wanted IS NOT NULL) AND NOT EXISTS "
        "(SELECT 1 FROM outbox o WHERE o.remote_hold_id = r.id AND o.state = 'pending')"
    ):
        add(f"remote hold {hold_id} awaits an answer but no message is being sent for it")

    # 4b'. The holder-usage cache is what the vouchers and decisions say.
    usage = {
        (h, y): (u, c)
        for h, y, u, c in conn.execute(
            "SELECT d.holder_id, d.fiscal_year, COALESCE(SUM(v.face_fen - v.reclaimed_fen), 0), "
            "SUM(d.estimated_amount_fen) FROM decisions d LEFT JOIN vouchers v ON v.id = d.voucher_id "
            "WHERE d.outcome = 'issued' GROUP BY d.holder_id, d.fiscal_year"
        )
    }
    cached_usage = {(h, y): (u, c) for h, y, u, c in conn.execute("SELECT * FROM holder_usage")}
    if usage != cached_usage:
        add("the holder-usage cache does not match the vouchers and decisions")

    # 4c. The exposure cache is what the holds say.
    expected_exposure: dict[tuple[str, str], int] = defaultdict(int)
    for region, window, state, amount, captured in conn.execute(
        "SELECT acquirer_region, settlement_window, state, amount_fen, captured_fen FROM holds "
        "WHERE state IN ('held', 'captured')"
    ):
        if state == "held":
            expected_exposure[(region, "")] += amount
        else:
            expected_exposure[(region, window)] += captured
    cached_exposure = {
        (a, w): fen
        for a, w, fen in conn.execute("SELECT acquirer, window_id, fen FROM exposure")
        if fen
    }
    if {k: v for k, v in expected_exposure.items() if v} != cached_exposure:
        add("the exposure cache does not match the holds")

    # 5. Budgets and caps.
    for year, policy in policies.items():
        funded = -cached.get(ledger.appropriation(year), 0)
        if funded != policy.annual_budget_fen:
            add(f"budget {year}: funded {funded} ≠ policy {policy.annual_budget_fen}")
        if issued_by_year[year] > policy.annual_budget_fen:
            add(f"budget {year}: issued {issued_by_year[year]} exceeds {policy.annual_budget_fen}")
        pool = cached.get(ledger.pool(year), 0)
        if pool != funded - issued_by_year[year]:
            add(f"budget {year}: pool {pool} ≠ funded − issued {funded - issued_by_year[year]}")
    categories = {hid: cat for hid, cat in conn.execute("SELECT id, category FROM holders")}
    for (holder_id, year), used in used_by_holder.items():
        year_policy = policies.get(year)
        category = (
            year_policy.categories.get(categories.get(holder_id, "")) if year_policy else None
        )
        if category is not None and used > category.annual_cap_fen:
            add(
                f"holder {holder_id}: {used} fen in {year} exceeds the cap {category.annual_cap_fen}"
            )

    # 6. Decisions and vouchers agree; an order is subsidised once (also a UNIQUE constraint).
    for decision_id, outcome, amount, face in conn.execute(
        "SELECT d.id, d.outcome, d.amount_fen, v.face_fen FROM decisions d "
        "LEFT JOIN vouchers v ON v.id = d.voucher_id"
    ):
        if outcome == "issued" and face != amount:
            add(f"decision {decision_id}: issued {amount} but voucher face is {face}")
        if outcome == "declined" and face is not None:
            add(f"decision {decision_id}: declined but a voucher exists")
    for provider_id, order_id, n in conn.execute(
        "SELECT provider_id, order_id, COUNT(*) FROM holds GROUP BY provider_id, order_id HAVING COUNT(*) > 1"
    ):
        add(f"order {order_id} of {provider_id} is subsidised {n} times")
    return problems
