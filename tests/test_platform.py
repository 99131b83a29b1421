"""The platform in a real browser (Debian's chromium through chromium-driver, Selenium) against
real node processes: a Hangzhou start-up gets a voucher and authorizes a Guiyang cluster, the
cluster redeems through its own node's pages, Hangzhou's operator sees the flow, closes the
window and pays its provider. Every page is checked with axe-core and photographed
(build/screenshots/, at phone and desktop width)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import Cluster
from tests.proc import wait_until
from tests.test_settlement import GY, GY_CENTRE, HZ

ROOT = Path(__file__).resolve().parent.parent
AXE = (ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js").read_text()
SHOTS = ROOT / "build" / "screenshots"
PHONE, DESKTOP = (390, 844), (1280, 900)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    assert shutil.which("chromium") and shutil.which("chromedriver"), (
        "make test installs Debian's chromium, chromium-driver and fonts-noto-cjk"
    )
    options = Options()
    options.binary_location = shutil.which("chromium") or ""
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium'}",
        f"--window-size={PHONE[0]},{PHONE[1]}",
        "--lang=zh-CN",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or ""), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    def __init__(self, driver: Any, base: str) -> None:
        self.d = driver
        self.base = base

    def open(self, path: str) -> None:
        self.d.get(self.base + path)

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.d.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.d.find_elements(By.CSS_SELECTOR, selector))

    def fill(self, name: str, value: str, form: str = "form") -> None:
        field = self.css(f"{form} [name='{name}']")
        field.clear()
        field.send_keys(value)

    def submit(self, form: str) -> None:
        """Submit, and wait until the next page has replaced this one."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        page = self.css("html")
        self.css(f"{form} button[type=submit]").click()

        def replaced(_: Any) -> bool:
            try:  # the old document's element: stale once the next page is in
                page.is_enabled()
            except WebDriverException:  # stale, or mid-navigation ("does not belong")
                return True
            return False

        WebDriverWait(self.d, 30).until(replaced)
        WebDriverWait(self.d, 30).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )

    def sign_in(self, token: str) -> None:
        """Sign out of this node (its cookies only: the other node's host keeps its own)."""
        self.open("/ui/signin")
        self.d.delete_all_cookies()
        self.open("/ui/signin")
        self.fill("token", token)
        self.submit("form[action='/ui/signin']")

    def text(self) -> str:
        return str(self.css("main").text)

    def check(self, name: str) -> None:
        """At phone and desktop width: no serious or critical axe-core violation, and a
        screenshot."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        for label, (w, h) in (("phone", PHONE), ("desktop", DESKTOP)):
            self.d.set_window_size(w, h)
            self.d.execute_script(AXE)
            result = self.d.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations));"
            )
            bad = [
                (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                for v in result
                if v["impact"] in ("serious", "critical")
            ]
            assert bad == [], f"{name} ({label}): {bad}"
            # The whole page, not only the first screen (at most 6000 px tall).
            tall = self.d.execute_script("return document.documentElement.scrollHeight")
            self.d.set_window_size(w, min(max(h, int(tall)), 6000))
            self.d.save_screenshot(str(SHOTS / f"{name}-{label}.png"))
        self.d.set_window_size(*PHONE)


@pytest.fixture
def duo(tmp_path: Path) -> Iterator[Cluster]:
    with Cluster(tmp_path, [HZ, GY]).session() as cluster:
        yield cluster


def test_a_cross_region_journey_through_the_pages(duo: Cluster, browser: Any) -> None:
    duo.start()
    from tests.conftest import HZ_ENTERPRISE, policy_text, valid_uscc

    duo.holder(HZ, "startup", HZ_ENTERPRISE)
    duo.provider(GY, "gy-centre", GY_CENTRE)
    hz_url, gy_url = duo[HZ].url, duo[GY].url.replace("127.0.0.1", "localhost")
    hz, gy = Page(browser, hz_url), Page(browser, gy_url)

    # Sign-in: a wrong token is refused beside the field.
    hz.sign_in("slh_not-a-token")
    assert "令牌无效" in hz.css("#e-token").text and hz.css("#error-summary")
    hz.check("signin")
    # Before any money moves, Hangzhou's overview: a peer, nothing owed, nothing to attend to.
    hz.sign_in(duo[HZ].operator)
    assert hz.css("[data-testid=all-well]") and hz.css(f"tr[data-peer='{GY}']")
    # The start-up submits a compute demand and sees the voucher at once, with reasons.
    hz.sign_in(duo[HZ].tokens["startup"])
    assert hz.d.current_url.endswith("/ui/holder")
    hz.fill("estimate", "abc", "form[action='/ui/holder/demand']")
    hz.submit("form[action='/ui/holder/demand']")
    assert hz.css("#e-estimate").is_displayed() and hz.all("tr[data-voucher]") == []
    hz.fill("estimate", "1000000", "form[action='/ui/holder/demand']")
    hz.submit("form[action='/ui/holder/demand']")
    assert hz.css("[data-testid=issued-amount]").text.endswith("¥300,000.00")
    assert "适用补贴比例" in hz.css("#decision").text  # reasons in plain Chinese
    voucher = hz.css("[data-testid=voucher-id]").text
    hz.check("holder-decision")
    # It finds compute in Guiyang, at its price after the voucher: 30 % off ¥20.00.
    from tests.test_catalog_federation import terms

    gy_centre = duo[GY].tokens["gy-centre"]
    offer = terms(price_fen=2_000, compute_class="domestic_chips")  # the voucher's class
    duo[GY].call("POST", "/v1/offers", gy_centre, offer, expect=201)

    def listed() -> bool:
        hz.open("/ui/holder/compute")
        return "Ascend 910B" in hz.text()

    wait_until(listed, "Guiyang's offer on Hangzhou's find-compute page", timeout=30)
    assert "¥14.00" in hz.text() and "¥20.00" in hz.text()
    hz.check("holder-compute")
    hz.open("/ui/holder")
    # ... and authorizes Guiyang's centre to spend up to ¥100,000 of it.
    hz.css("details.authorize summary").click()
    form = f"form[action='/ui/holder/vouchers/{voucher}/authorize']"
    hz.fill("provider_id", duo[GY].ids["gy-centre"], form)
    hz.fill("provider_region", GY, form)
    hz.fill("max_yuan", "100000", form)
    hz.submit(form)
    code = hz.css("[data-testid=auth-code]").text
    hz.check("holder-code")

    # Guiyang's centre redeems through its own node's pages: a bad amount first.
    gy.sign_in(duo[GY].tokens["gy-centre"])
    assert gy.d.current_url.endswith("/ui/provider")
    redeem = "form[action='/ui/provider/redeem']"
    gy.fill("code", code, redeem)
    gy.fill("order_id", "GY-WEB-1", redeem)
    gy.fill("order_amount", "-5", redeem)
    gy.submit(redeem)
    assert gy.css("#e-order_amount").is_displayed()
    gy.fill("order_amount", "200000", redeem)
    gy.submit(redeem)

    def captured() -> bool:
        gy.open("/ui/provider")
        return "¥60,000.00" in gy.text() and "已使用" in gy.text()

    wait_until(captured, "the cross-region redemption captured", timeout=30)
    gy.check("provider")
    gy.open("/ui/provider/offers")
    assert "Ascend 910B" in gy.text() and "在售" in gy.text()
    gy.check("provider-offers")

    # Hangzhou's operator sees the flow, closes the window and pays.
    hz.sign_in(duo[HZ].operator)
    assert hz.d.current_url.endswith("/ui/operator")
    assert hz.css("[data-testid=captured]").text == "¥60,000.00"
    assert hz.css("[data-testid=captured-elsewhere]").text == "¥60,000.00"
    for chart in ("sankey", "months"):
        wait_until(
            lambda chart=chart: hz.css(f"[data-chart={chart}]").get_attribute("data-drawn") == "1",
            f"the {chart} chart drawn",
            timeout=15,
        )
    hz.check("operator")
    pages = ("decisions", "settlement", "netting", "policy", "holders", "providers", "peers")
    for page in (*pages, "audit"):
        hz.open(f"/ui/operator/{page}")
        hz.check(f"operator-{page}")
        if page == "peers":  # Guiyang, its fingerprint, an empty backlog, its current key
            row = hz.css(f"tr[data-peer='{GY}']").text
            assert GY in row and hz.css("[data-testid=backlog]").text == "0"
            assert "当前使用" in [e.text for e in hz.all("[data-testid=key-state]")]
        if page == "netting":  # nothing agreed yet: Guiyang answered, no position
            assert "无法联系" not in hz.text()
        if page == "policy":  # a file with two problems: both named, each beside its line
            broken = policy_text(model_services="30000", annual_budget_fen="-1")
            hz.d.execute_script("document.getElementById('f-toml').value = arguments[0];", broken)
            hz.submit("form[action='/ui/operator/policy/check']")
            shown = [e.text for e in hz.all("tr[data-line] [data-testid=policy-problem]")]
            assert len(shown) == 2 and len(hz.all("#error-summary li")) == 2, shown
            hz.check("operator-policy-problems")
    # A provider registered on the page: a bad credit code first, shown beside its field.
    register = "form[action='/ui/operator/providers']"
    hz.open("/ui/operator/providers")
    hz.fill("uscc", "91330100716105852X", register)
    hz.fill("name", "滨江智算中心", register)
    hz.submit(register)
    assert hz.css("#e-uscc").is_displayed() and hz.css("#error-summary")
    hz.fill("uscc", valid_uscc("91330108MA2K00001"), register)
    hz.css(f"{register} [name=approved]").click()
    hz.submit(register)
    assert "滨江智算中心" in hz.css("#link").text and "已批准" in hz.css("#link").text
    hz.open("/ui/operator")
    hz.submit("form[action='/ui/operator/windows/close']")
    assert hz.css("#notice")
    # Every operator page in English too (the choice is remembered), each checked.
    hz.open("/ui/operator?lang=en")
    assert "Overview" in hz.text() and "Needs attention" in hz.text()
    hz.check("operator-en")
    for page in pages:
        hz.open(f"/ui/operator/{page}")
        assert "请" not in hz.text(), page  # no Chinese sentence left untranslated
        hz.check(f"operator-{page}-en")
    hz.open("/ui/operator?lang=zh")
    # Guiyang's own window: its operator pays its centre on the page.
    gy.sign_in(duo[GY].operator)
    gy.submit("form[action='/ui/operator/windows/close']")

    def payable() -> bool:
        gy.open("/ui/operator")
        return bool(gy.all("form[action='/ui/operator/payments']"))

    wait_until(payable, "Guiyang's payout statement", timeout=30)
    pay = "form[action='/ui/operator/payments']"
    gy.fill("reference", "ICBC-WEB-1", pay)
    gy.submit(pay)
    assert "¥60,000.00" in gy.css("#paid").text

    # Hangzhou owes Guiyang the ¥60,000 its statement says: it pays and advises on its
    # settlement page; Guiyang confirms receipt on its own; Hangzhou's window is settled.
    def due() -> bool:
        hz.open("/ui/operator/settlement")
        return bool(hz.all(f"[data-due='{GY}'] form"))

    hz.sign_in(duo[HZ].operator)
    wait_until(due, "the statement agreed and the transfer due", timeout=30)
    assert "¥60,000.00" in hz.css(f"[data-due='{GY}']").text
    hz.check("operator-settlement")
    record = f"[data-due='{GY}'] form"
    hz.fill("reference", "ICBC-HZ-GY-1", record)
    hz.submit(record)
    assert hz.css("#done")

    def advised() -> bool:
        gy.open("/ui/operator/settlement")
        return bool(gy.all("form[action$='/answer']"))

    gy.sign_in(duo[GY].operator)
    wait_until(advised, "the advice at Guiyang", timeout=30)
    gy.submit("form[action$='/answer']")  # the first: confirm receipt
    assert gy.css("[data-testid=transfer-state]").text == "已确认"

    def settled() -> bool:
        hz.open("/ui/operator/settlement")
        return hz.css("[data-testid=window-state]").text == "已结清"

    wait_until(settled, "Hangzhou's window settled", timeout=30)
    duo.check_all()
