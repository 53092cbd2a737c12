"""Fixtures of the browser tests: a small simulated production, `dagster dev` on it, and Debian's Chromium.

The lake is made the way a user makes one (the simulator, then ``closedloop run`` and ``closedloop
compare`` as commands) in a temporary folder with its own DAGSTER_HOME, so the UI shows exactly
those runs. Screenshots and the webserver's log go to ``artifacts_dir()``, emptied at the start.
"""

import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Browser, Page, expect, sync_playwright

from closedloop.simulator import simulate
from tests.helpers import TEST_REGISTRY, day, free_port, stop_process_group, wait_until_serving
from tests_browser.helpers import (
    BIN,
    CHROMIUM,
    CHROMIUM_FLAGS,
    PROJECT,
    Production,
    artifacts_dir,
    new_page,
)

# Long enough for fraud's shadow week (from day 28) and three canary days of v12 (released on day 35).
SIMULATED_DAYS = 38
FRAUD_DAYS = (day(33), day(37))  # v12's last shadow days and its first canary days
EXPECT_SECONDS = 30  # a UI under load (two cores, a daemon and code servers) is slower than Playwright's 5 s


def pytest_terminal_summary(terminalreporter) -> None:
    terminalreporter.write_line(f"browser test screenshots and logs: {artifacts_dir()}")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = artifacts_dir()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _browser_registry(folder: Path) -> Path:
    """The tests' registry with fraud's drift baseline frozen from the days around v12's release, so that one
    run of five days gives fraud a baseline, drift figures, check history and a canary to compare."""
    registry = yaml.safe_load(TEST_REGISTRY.read_text())
    start, end = (dt.date.fromisoformat(d) for d in FRAUD_DAYS)
    registry["models"]["fraud"]["baseline"] = {"start": start, "end": end}
    path = folder / "models.yaml"
    path.write_text(yaml.safe_dump(registry, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def production(tmp_path_factory) -> Production:
    """Simulated logs of both models, and fraud's days around v12's release materialized; ticket_triage has
    nothing materialized (the UI test backfills it)."""
    root = tmp_path_factory.mktemp("production")
    landing, lake, dagster_home = root / "landing", root / "lake", root / "dagster_home"
    simulate(landing, days=SIMULATED_DAYS, seed=7, fraud_rows_per_day=1500, triage_rows_per_day=3000)
    env = {
        **os.environ,
        "CLOSEDLOOP_CONFIG": str(_browser_registry(root)),
        "CLOSEDLOOP_LANDING": str(landing),
        "CLOSEDLOOP_LAKE": str(lake),
        "DAGSTER_HOME": str(dagster_home),
        "MPLCONFIGDIR": str(root / "mplconfig"),
        "MPLBACKEND": "Agg",
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    made = Production(landing, lake, dagster_home, env)
    made.closedloop("run", "--model", "fraud", "--start", FRAUD_DAYS[0], "--end", FRAUD_DAYS[1])
    return made


@pytest.fixture(scope="session")
def daily_report(production: Production) -> Path:
    """The report of fraud's last run day (v12's canary), as ``closedloop run`` wrote it; the calendar beside it."""
    path = production.lake / "reports" / "fraud" / f"{FRAUD_DAYS[1]}.html"
    assert path.exists(), f"closedloop run did not write {path}"
    return path


@pytest.fixture(scope="session")
def comparison_report(production: Production) -> Path:
    """``closedloop compare`` of fraud's v12 canary against v11; returns its report."""
    printed = production.closedloop("compare", "--model", "fraud", "--baseline", "v11", "--candidate", "v12")
    return Path(json.loads(printed)["report"])


@pytest.fixture(scope="session")
def dagster_ui(production: Production, artifacts: Path) -> Iterator[str]:
    """``dagster dev -w workspace.yaml`` on 127.0.0.1 over the simulated production; yields its base URL."""
    port = free_port()
    log = artifacts / "dagster-dev.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT,
            env=production.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that one signal stops all it starts
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, base_url, log)
        yield base_url
    finally:
        stop_process_group(process)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened = new_page(browser)
    yield opened
    opened.context.close()


@pytest.fixture
def ui(page: Page, dagster_ui: str) -> Page:
    """A page for the Dagster UI, its 'Join the Dagster community' dialog dismissed as a returning user's is."""
    page.context.add_init_script("localStorage.setItem('communityNux', JSON.stringify('1'))")
    page.set_default_timeout(EXPECT_SECONDS * 1000)
    expect.set_options(timeout=EXPECT_SECONDS * 1000)
    return page
