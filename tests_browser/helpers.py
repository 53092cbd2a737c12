"""What the browser tests share: Debian's Chromium, the artifacts folder, the self-contained page check,
and running closedloop and `dagster dev` as a user would.

Test modules import from here (conftest.py holds only fixtures).
"""

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, Route

from closedloop.core.environment import data_dir
from tests.helpers import BIN

PROJECT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium as root on a closed network: without the background-networking flags it keeps
# trying Google's hosts, and their refused connections would read as the page's own requests.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1000}


def artifacts_dir() -> Path:
    """Where the screenshots go: ``browser-artifacts/`` in closedloop's data directory (git ignores it)."""
    return data_dir() / "browser-artifacts"


@dataclass
class PageRecord:
    """What a page did while it loaded: console errors, requests that tried to leave it, its figures."""

    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    figures: list[dict] = field(default_factory=list)


def assert_self_contained_page(page: Page, path: Path, screenshot: Path, min_figures: int = 1) -> PageRecord:
    """Open a generated HTML file and assert it stands alone: every figure loaded, no console error, and no
    request for anything but the file itself and data: URLs (such requests are aborted). Saves a full-page
    screenshot to ``screenshot`` first, so a failure can be looked at. The page stays open for more checks."""
    record = PageRecord()

    def keep_inside(route: Route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            record.outside_requests.append(url)
            route.abort()

    def note_error(message: ConsoleMessage) -> None:
        if message.type == "error":
            record.console_errors.append(message.text)

    page.on("console", note_error)
    page.on("pageerror", lambda error: record.console_errors.append(str(error)))
    page.route("**/*", keep_inside)
    page.goto(path.resolve().as_uri(), wait_until="load")
    record.figures = page.evaluate(
        """() => Array.from(document.images).map(image => ({
            src: image.currentSrc.slice(0, 60), complete: image.complete,
            width: image.naturalWidth, height: image.naturalHeight}))"""
    )
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    assert not record.outside_requests, f"{path}: requests leaving the page: {record.outside_requests}"
    broken = [f["src"] for f in record.figures if not (f["complete"] and f["width"] > 0 and f["height"] > 0)]
    assert not broken, f"{path}: figures that did not load: {broken}"
    assert len(record.figures) >= min_figures, f"{path}: {len(record.figures)} figure(s), expected {min_figures}+"
    assert not record.console_errors, f"{path}: console errors: {record.console_errors}"
    return record


@dataclass(frozen=True)
class Production:
    """A simulated production's folders and the environment that points closedloop and Dagster at them."""

    landing: Path
    lake: Path
    dagster_home: Path
    env: dict[str, str]

    def closedloop(self, *args: str) -> str:
        """Run ``closedloop ARGS --json`` as a user would and return what it printed."""
        done = subprocess.run(
            [str(BIN / "closedloop"), *args, "--json"], env=self.env, cwd=PROJECT, capture_output=True, text=True
        )
        assert done.returncode == 0, f"closedloop {' '.join(args)} failed:\n{done.stderr[-3000:]}"
        return done.stdout


def new_page(browser: Browser) -> Page:
    """A page in a fresh context (its own storage), sized so that screenshots read well."""
    return browser.new_context(viewport=VIEWPORT).new_page()
