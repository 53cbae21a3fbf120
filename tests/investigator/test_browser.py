"""End to end in Debian's Chromium, driven by Playwright: the investigation story across three roles.

Screenshots of each main page are written to test-artifacts/screenshots/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

from tests.workbench import build_investigation

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("CI"):
            pytest.fail("Chromium is required on CI: `make test` installs it (apt-get install chromium)")
        pytest.skip("Chromium is not installed (sudo apt-get install chromium, or run `make test` as root)")
    from playwright.sync_api import sync_playwright

    # Playwright's synchronous API runs an event loop in this thread; the ORM calls around it are ordinary
    # blocking calls made between browser steps.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()
        # While Playwright's loop runs, Django keeps the test's database connection apart from the one outside
        # (asgiref's context-local storage), so it is closed here, or the test database cannot be dropped.
        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _session(browser, live_server, username: str, problems: list[str]):
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.on("console", lambda m: problems.append(f"{username}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"{username}: {e}"))
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"{username}-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    return context, page


def _shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_investigation_story_in_a_real_browser(browser, live_server, cast):
    from accounts.models import Account
    from investigator.models import Case

    inv = build_investigation(extra_members=3)
    problems: list[str] = []

    # An investigator opens the top cluster, follows an account, starts a case, adds the account and annotates it.
    context, page = _session(browser, live_server, "investigator", problems)
    _shot(page, "dashboard")
    page.click("text=Top clusters >> xpath=.. >> a[href*='/clusters/']")
    page.wait_for_selector("#graph[data-ready=true]")
    page.wait_for_selector("canvas#timeline[data-ready=true]")
    assert page.locator("#members tbody tr").count() == 6
    _shot(page, "cluster")
    page.goto(f"{live_server.url}/clusters/")
    page.select_option("select[name=sort]", "size")
    page.wait_for_selector("#cluster-table")
    _shot(page, "clusters")
    page.goto(f"{live_server.url}/cases/")
    page.fill("input[name=title]", "Dump chump network")
    page.click("text=Create case")
    page.wait_for_selector("h1:has-text('Dump chump network')")
    page.goto(f"{live_server.url}/clusters/{inv.cluster.pk}/")
    page.click("#members a:has-text('@dumpchump1')")
    page.wait_for_selector("h1:has-text('@dumpchump1')")
    page.wait_for_selector("canvas#activity[data-ready=true]")
    page.click(".profile .add-to-case button")
    page.wait_for_selector(".add-result.ok:has-text('Added 1 to')")
    _shot(page, "account")
    case = Case.objects.get(title="Dump chump network")
    page.goto(f"{live_server.url}/cases/{case.pk}/")
    page.fill(".item textarea[name=text]", "Posted the same caption a minute after @dumpchump2")
    page.fill(".item input[name=tags]", "T0143.002 T0049")
    page.click(".item button:has-text('Save note and tags')")
    page.wait_for_selector(".item .notes:has-text('Posted the same caption')")
    assert page.locator(".item .pill.tag:has-text('Fabricated Persona')").count() == 1
    _shot(page, "case")
    page.goto(f"{live_server.url}/search/?q=dumpchump&kind=accounts")
    _shot(page, "search")
    context.close()

    # A reviewer confirms the account with a reason; the audit page shows the chain intact.
    context, page = _session(browser, live_server, "reviewer", problems)
    page.goto(f"{live_server.url}/review/")
    assert page.locator("text=@dumpchump1").count() == 1
    _shot(page, "review")
    target = Account.objects.get(handle="dumpchump1")
    page.goto(f"{live_server.url}/accounts/{target.pk}/")
    page.check("#account-review input[value=confirmed]")
    page.fill("#account-review textarea[name=reason]", "Same caption within a minute of two look-alike accounts")
    page.click("#account-review button[type=submit]")
    page.wait_for_selector(".messages li.success")
    assert page.locator("h1 .pill.confirmed").count() == 1
    assert page.locator("text=Same caption within a minute of two look-alike accounts").count() == 1
    page.goto(f"{live_server.url}/audit/")
    assert page.locator("#chain-status .chain-ok").count() == 1
    _shot(page, "audit")
    context.close()

    # A lead sees the export action on the case.
    context, page = _session(browser, live_server, "lead", problems)
    page.goto(f"{live_server.url}/cases/{case.pk}/")
    assert page.locator("#export").is_visible()
    # The API's docs page runs from our own static files under the same Content-Security-Policy.
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector("#swagger-ui .opblock-tag:has-text('cases')")
    assert page.locator(".opblock-summary-path:has-text('/api/exports/')").count() >= 1
    _shot(page, "api-docs")
    context.close()

    target.refresh_from_db()
    assert target.review_status == "confirmed"
    # No script errors and no Content-Security-Policy violations on any page.
    assert problems == [], problems
