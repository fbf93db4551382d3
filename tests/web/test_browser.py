"""The pages in a real browser (Debian's chromium through Playwright) against a real uvicorn server:
login, live search (fragment swap, no navigation), the same search without JavaScript, an
organization and an account page, an organization admin's approvals — and no horizontal scrolling
at 360 px."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import ViewportSize, expect, sync_playwright

from allegiance.bootstrap import Allegiance
from tests import factories
from tests.conftest import ProgramFixture
from tests.web.conftest import HTTPX_WARNING, OperatorUser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE: ViewportSize = {"width": 360, "height": 740}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings(f"ignore:{HTTPX_WARNING}"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium "
                                                     "(apt-get install chromium fonts-noto-cjk)"),
]


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """uvicorn in a thread on a socket bound here (port 0: the OS picks a free one, no race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    pause = threading.Event()
    try:
        for _ in range(200):  # at most ~10 s
            try:
                if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            pause.wait(0.05)
        else:
            pytest.fail("the server did not become ready")
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def sample(allegiance: Allegiance, program: ProgramFixture) -> dict[str, Any]:
    group = factories.organization(allegiance, program.id, name="Hanbit Holdings", external_id="KR-0001",
                                   kind="distributor")
    org = factories.organization(allegiance, program.id, name="한빛 전자 주식회사 (Hanbit Electronics Co., Ltd.)",
                                 external_id="KR-2002", kind="dealer", parent_id=group["id"], country="KR")
    factories.organization(allegiance, program.id, name="한빛 전자 부산 지점", parent_id=org["id"])
    for i in range(8):
        factories.organization(allegiance, program.id, name=f"Acme Regional Supply {i}")
    boss = factories.participant(allegiance, program.id, org["id"], name="김민준", is_org_admin=True, role="owner",
                                 email="minjun.kim.purchasing-department@hanbit-electronics.example")
    factories.participant(allegiance, program.id, org["id"], name="Lee Seo-yeon", role="engineer")
    pool = factories.pool_account(allegiance, program.id, org["id"])
    personal = factories.personal_account(allegiance, program.id, org["id"], boss["id"])
    factories.fund(allegiance, program.id, pool, 1_250_000)
    factories.fund(allegiance, program.id, personal, 4_800)
    with allegiance.write() as uow:
        uow.ledger.reserve(program.id, pool, 50_000, ttl=timedelta(days=2),
                           memo="Catalogue order: 2 x cordless drill kits, delivery to the Busan branch")
    return {"org": org, "pool": pool}


def _no_horizontal_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} scrolls sideways: {width}px"


def _log_in(page: Any, base: str, user: OperatorUser) -> None:
    page.goto(f"{base}/organizations")
    assert "/login?next=" in page.url
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/organizations")


def test_operator_journey_on_a_phone(web_app: FastAPI, operator_user: OperatorUser, sample: dict[str, Any],
                                     tmp_path: Path) -> None:
    with serve(web_app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE, locale="en-US")
            _log_in(page, base, operator_user)
            rows = page.locator("#organization-rows tr")
            expect(rows).to_have_count(11)
            _no_horizontal_scroll(page)
            page.screenshot(path=str(tmp_path / "organizations.png"), full_page=True)

            page.evaluate("window.sameDocument = true")  # survives a fragment swap, not a navigation
            page.get_by_label("Search").fill("한빛 전자")
            expect(rows).to_have_count(2)
            expect(page.locator("#organization-rows")).to_contain_text("주식회사")
            assert page.evaluate("window.sameDocument") is True
            assert "q=" in page.url  # the address bar follows, so reload and back keep the search
            page.get_by_label("Kind").select_option("dealer")
            expect(rows).to_have_count(1)
            _no_horizontal_scroll(page)
            page.screenshot(path=str(tmp_path / "search.png"), full_page=True)

            page.get_by_role("link", name="한빛 전자 주식회사 (Hanbit Electronics Co., Ltd.)").click()
            page.wait_for_url(f"{base}/organizations/{sample['org']['id']}")
            expect(page.get_by_role("navigation", name="Breadcrumb")).to_contain_text("Hanbit Holdings")
            expect(page.locator("main")).to_contain_text("김민준")
            expect(page.locator("main")).to_contain_text("1,200,000 PTS")
            _no_horizontal_scroll(page)
            page.screenshot(path=str(tmp_path / "organization.png"), full_page=True)

            page.locator(f'a[href="/accounts/{sample["pool"]}"]').first.click()
            expect(page.locator("main")).to_contain_text("Available")
            _no_horizontal_scroll(page)
            page.screenshot(path=str(tmp_path / "account.png"), full_page=True)

            page.set_viewport_size({"width": 1280, "height": 800})  # the wide layout shows real table headers
            expect(page.get_by_role("columnheader", name="Amount")).to_be_visible()
            page.screenshot(path=str(tmp_path / "account-wide.png"), full_page=True)
        finally:
            browser.close()


def test_search_works_without_javascript(web_app: FastAPI, operator_user: OperatorUser, sample: dict[str, Any],
                                         tmp_path: Path) -> None:
    with serve(web_app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(java_script_enabled=False, viewport=PHONE).new_page()
            _log_in(page, base, operator_user)
            page.get_by_label("Search").fill("KR-2002")
            page.get_by_role("button", name="Search").click()
            page.wait_for_url(f"{base}/organizations?q=KR-2002*")
            expect(page.locator("#organization-rows tr")).to_have_count(1)
            expect(page.locator("#organization-rows")).to_contain_text("한빛 전자 주식회사")
            _no_horizontal_scroll(page)
        finally:
            browser.close()


def test_org_admin_approves_on_a_phone(web_app: FastAPI, allegiance: Allegiance, program: ProgramFixture,
                                       tmp_path: Path) -> None:
    from tests.web.routes.rewards_helpers import item, needs_manager_for_travel, org_admin_user, redeem, team

    needs_manager_for_travel(allegiance, program.id)
    trip = item(allegiance, program.id, 2_500, name="Two nights in Busan, with the plant tour and dinner")
    hanbit = team(allegiance, program.id, "한빛 전자 주식회사 (Hanbit Electronics Co., Ltd.)")
    other = team(allegiance, program.id, "Rival Trading")
    first = redeem(allegiance, program.id, hanbit, trip["id"], delivery="Busan branch, 3rd floor reception")
    second = redeem(allegiance, program.id, hanbit, trip["id"])
    foreign = redeem(allegiance, program.id, other, trip["id"])
    admin = org_admin_user(allegiance, hanbit.admin["id"])
    with serve(web_app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE, locale="en-US")
            page.goto(f"{base}/my/approvals")
            page.get_by_label("Email").fill(admin.email)
            page.get_by_label("Password").fill(admin.password)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{base}/my/approvals")
            rows = page.locator("#redemption-rows tr")
            expect(rows).to_have_count(2)
            expect(page.locator("#redemption-rows")).not_to_contain_text("Rival")
            _no_horizontal_scroll(page)
            page.screenshot(path=str(tmp_path / "approvals.png"), full_page=True)

            page.get_by_role("link", name=f"#{first['id']}").click()
            page.wait_for_url(f"{base}/my/approvals/{first['id']}")
            expect(page.locator("main")).to_contain_text("Busan branch, 3rd floor reception")
            _no_horizontal_scroll(page)
            page.get_by_role("button", name="Approve").click()
            page.wait_for_url(f"{base}/my/approvals/{first['id']}?done=approved")
            expect(page.get_by_role("status")).to_contain_text("Approved.")
            page.screenshot(path=str(tmp_path / "approved.png"), full_page=True)

            page.goto(f"{base}/my/approvals/{second['id']}")
            page.get_by_label("Reason for rejecting").fill("Travel is frozen until the audit ends")
            page.get_by_role("button", name="Reject").click()
            page.wait_for_url(f"{base}/my/approvals/{second['id']}?done=rejected")
            expect(page.locator("main")).to_contain_text("Travel is frozen until the audit ends")
            _no_horizontal_scroll(page)

            page.get_by_role("link", name="Approvals").first.click()
            expect(page.locator("#redemption-rows")).to_contain_text("Nothing waits for approval.")
            assert page.goto(f"{base}/my/approvals/{foreign['id']}").status == 404  # type: ignore[union-attr]
        finally:
            browser.close()
    with allegiance.read() as uow:
        assert uow.rewards.redemption(program.id, first["id"])["status"] == "approved"
        assert uow.rewards.redemption(program.id, second["id"])["status"] == "rejected"
        assert uow.rewards.redemption(program.id, foreign["id"])["status"] == "pending_approval"


def test_operator_pages_of_issue_4_fit_a_phone(web_app: FastAPI, allegiance: Allegiance, program: ProgramFixture,
                                               operator_user: OperatorUser, tmp_path: Path) -> None:
    from tests.web.routes.rewards_helpers import item, needs_manager_for_travel, redeem, team
    from tests.web.routes.test_coop import dealer_with_claim
    from tests.web.routes.test_rules import document, orders, save
    from tests.web.routes.test_tiers import setup

    needs_manager_for_travel(allegiance, program.id)
    trip = item(allegiance, program.id, 2_500, name="Two nights in Busan, with the plant tour and a very long name")
    waiting = redeem(allegiance, program.id, team(allegiance, program.id, "한빛 전자 주식회사 (Hanbit Electronics)"),
                     trip["id"], delivery="Busan branch, 3rd floor reception, ask for 김민준")
    version = save(allegiance, program.id, document(), "online push for the spring quarter")
    orders(allegiance, program.id, factories.organization(allegiance, program.id)["id"], [10_000, 5_000])
    setup(allegiance, program.id)
    _, claim = dealer_with_claim(allegiance, program.id)
    pages = ["/redemptions", f"/redemptions/{waiting['id']}", "/catalog", "/catalog/new", f"/catalog/{trip['id']}",
             "/rules", f"/rules/versions/{version}", f"/rules/versions/{version}/activate",
             f"/rules/backtest?version={version}&from=2026-03-01&to=2026-03-31", "/tiers", "/coop",
             f"/coop/claims/{claim['id']}"]
    with serve(web_app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE, locale="en-US")
            _log_in(page, base, operator_user)
            for index, path in enumerate(pages):
                response = page.goto(f"{base}{path}")
                assert response is not None and response.status == 200, path
                _no_horizontal_scroll(page)
                page.screenshot(path=str(tmp_path / f"page-{index:02d}.png"), full_page=True)
        finally:
            browser.close()
