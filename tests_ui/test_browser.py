"""End to end in headless Chromium (Debian's package, driven by Playwright) against a real api-server, scheduler,
dag-processor and triggerer with the emulator: the views a user opens, and screenshots of each.

Screenshots go to ``$LAKEFLOW_UI_SCREENSHOTS`` (default ``test-artifacts/ui``); their paths are printed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium package is not installed")
playwright_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("LAKEFLOW_UI_SCREENSHOTS", ROOT / "test-artifacts" / "ui"))
#: This machine's closed network refuses Chromium's background connections: these flags keep it from trying.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def airflow():
    from airflow_provider_lakeflow.ui.demo import LocalAirflow

    local = LocalAirflow().start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="module")
def page():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="lakeflow-chromium-"),  # an empty user-data dir
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport=LAPTOP,
        )
        page = context.pages[0] if context.pages else context.new_page()
        # Generous: on a loaded 2-core machine Airflow's UI takes a while to build its first page.
        page.set_default_timeout(120_000)
        try:
            yield page
        finally:
            context.close()


def shot(page, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def task_tab(airflow, dag_id: str, run_id: str) -> str:
    return f"{airflow.url}/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/run/plugin/lakeflow_update"


def wait_for_state(airflow, dag_id: str, run_id: str, states: set[str], timeout: float) -> str:
    deadline = time.time() + timeout
    state = ""
    while time.time() < deadline:
        state = airflow.task_state(dag_id, run_id)
        if state in states:
            return state
        time.sleep(2)
    raise AssertionError(f"{dag_id} {run_id}: task still {state!r}, wanted {states}")


def test_lakeflow_views_in_a_real_browser(airflow, page):
    try:
        walk_through(airflow, page)
    except BaseException:
        shot(page, "failure")  # what the browser showed when it went wrong
        raise


def walk_through(airflow, page) -> None:
    started = time.time()
    ok_run = airflow.trigger("lakeflow_ui_demo")
    failed_run = airflow.trigger("lakeflow_ui_demo_failure")

    # Log in through Airflow's own login form.
    page.goto(f"{airflow.url}/")
    page.locator("input[name='username']").fill("admin")
    page.locator("input[name='password']").fill("admin")
    page.locator("button[type='submit']").click()
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)

    # A deferred run: its tab shows the tables as they land, one after the other.
    wait_for_state(airflow, "lakeflow_ui_demo", ok_run, {"deferred"}, timeout=180)
    page.goto(task_tab(airflow, "lakeflow_ui_demo", ok_run))
    rows = page.locator("[data-testid='lakeflow-table-row']")
    landed = page.locator("[data-testid='lakeflow-table-row'][data-status='COMPLETED']")
    rows.first.wait_for(timeout=120_000)
    page.wait_for_function(
        "() => document.querySelectorAll(\"[data-testid='lakeflow-table-row'][data-status='COMPLETED']\").length === 1",
        timeout=120_000,
    )
    assert rows.count() == 2
    first = landed.first.locator("td").first.inner_text()
    assert airflow.task_state("lakeflow_ui_demo", ok_run) == "deferred"
    shot(page, "01-deferred-first-table-landed")
    page.wait_for_function(
        "() => document.querySelectorAll(\"[data-testid='lakeflow-table-row'][data-status='COMPLETED']\").length === 2",
        timeout=120_000,
    )
    tables = [rows.nth(i).locator("td").first.inner_text() for i in range(2)]
    assert tables[0] == first  # landed first, listed first
    assert set(tables) == {"main.sales.account", "main.sales.contact"}
    shot(page, "02-deferred-both-tables-landed")

    # A failed update: the category and the documented fix the task raised.
    wait_for_state(airflow, "lakeflow_ui_demo_failure", failed_run, {"failed"}, timeout=180)
    page.goto(task_tab(airflow, "lakeflow_ui_demo_failure", failed_run))
    category = page.locator("[data-testid='lakeflow-failure-category']")
    category.wait_for(timeout=60_000)
    assert category.inner_text() == "duplicate_keys"
    assert "main.sales.contact" in page.locator("[data-testid='lakeflow-failure']").inner_text()
    assert page.locator("[data-testid='lakeflow-failure-fix']").inner_text().strip()
    shot(page, "03-failed-update-category-and-fix")

    # The Lakeflow page: both pipelines, each with its timeline (once the first run has pushed its rows).
    wait_for_state(airflow, "lakeflow_ui_demo", ok_run, {"success"}, timeout=180)
    page.goto(f"{airflow.url}/plugin/lakeflow")
    page.locator("[data-testid='lakeflow-timeline']").first.wait_for(timeout=60_000)
    assert page.locator("[data-testid='lakeflow-pipeline']").count() == 2
    chart = page.locator("[data-testid='lakeflow-rows-chart']")
    assert chart.count() == 2  # both runs reported rows per table
    shot(page, "04-pipelines-page-timeline")
    page.locator("[data-testid='lakeflow-failed-filter']").check()
    page.wait_for_function(
        "() => document.querySelectorAll(\"[data-testid='lakeflow-pipeline']\").length === 1", timeout=30_000
    )
    shot(page, "05-pipelines-page-failed-only")

    # Dark mode, as Airflow's own switch sets it (next-themes keeps the choice in localStorage "theme").
    page.evaluate("() => localStorage.setItem('theme', 'dark')")
    page.reload()
    page.locator("[data-lakeflow-theme='dark']").first.wait_for(timeout=60_000)
    page.locator("[data-testid='lakeflow-timeline']").first.wait_for(timeout=60_000)
    shot(page, "06-pipelines-page-dark")
    print(f"browser test took {time.time() - started:.0f} s")
