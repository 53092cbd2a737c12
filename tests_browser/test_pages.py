"""closedloop's generated HTML pages stand alone in a browser: figures load, nothing errs, nothing is fetched.

Runs before test_ui.py (file order), so the comparison has written to the lake before `dagster dev` starts.
"""

import base64
import datetime as dt
import io
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from playwright.sync_api import Page, expect

from closedloop.core.lake import Lake
from closedloop.registry import load_registry
from closedloop.reports.health import health_on_day
from tests_browser.helpers import Production, assert_self_contained_page


def _png() -> str:
    figure, axes = plt.subplots(figsize=(2, 1))
    axes.plot([0, 1], [0, 1])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _page(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "page.html"
    path.write_text(f"<!doctype html><html><head><title>t</title></head><body>{body}</body></html>")
    return path


def test_the_version_comparison_report_stands_alone(page: Page, comparison_report: Path, artifacts: Path):
    record = assert_self_contained_page(page, comparison_report, artifacts / "report-comparison-fraud-v11-v12.png")
    assert len(record.figures) >= 3  # scores, decisions and the canary day by day
    expect(page.get_by_role("heading", level=1)).to_have_text("fraud: what changed from v11 to v12")
    expect(page.locator(".verdict")).to_be_visible()


def test_the_daily_report_opens_with_the_verdict_and_every_figure_loads(
    page: Page, production: Production, daily_report: Path, artifacts: Path
):
    record = assert_self_contained_page(page, daily_report, artifacts / "report-daily-fraud.png", min_figures=10)
    registry = load_registry(production.env["CLOSEDLOOP_CONFIG"], lake=str(production.lake))
    fraud = registry.model("fraud")
    health = health_on_day(Lake(registry.lake, registry.landing), fraud, dt.date.fromisoformat(daily_report.stem))
    status = page.locator("#status")
    expect(status).to_be_visible()
    expect(status.locator(".verdict .state")).to_have_text(health.state)
    for slo in fraud.slos:
        expect(page.locator("#slos")).to_contain_text(slo.name)
    # The verdict is on the first screen a laptop shows, above every figure but the SLO thumbnails.
    assert status.bounding_box()["y"] < 300
    assert len(record.figures) >= 10


def test_the_calendar_and_the_summary_link_the_days(page: Page, daily_report: Path, artifacts: Path):
    index = daily_report.parent.parent / "index.html"
    assert_self_contained_page(page, index, artifacts / "report-index.png", min_figures=0)
    day = daily_report.stem
    cell = page.locator(f"a.day[href='fraud/{day}.html']")
    expect(cell).to_have_attribute("title", re.compile(rf"^{day}: (ok|breaching|breached|no data)"))
    cell.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"fraud on {day}")
    summary = daily_report.parent.parent / "summary.html"
    assert_self_contained_page(page, summary, artifacts / "report-summary.png", min_figures=0)
    expect(page.locator("#summary")).to_contain_text("fraud")


def test_the_page_check_passes_an_embedded_figure(page: Page, tmp_path: Path, artifacts: Path):
    path = _page(tmp_path, f'<img alt="line" src="data:image/png;base64,{_png()}">')
    record = assert_self_contained_page(page, path, artifacts / "page-check-embedded.png")
    assert record.figures[0]["width"] > 0


@pytest.mark.parametrize(
    ("name", "body", "says"),
    [
        ("remote-figure", '<img alt="remote" src="http://127.0.0.1:9/figure.png">', "requests leaving the page"),
        ("broken-figure", '<img alt="broken" src="data:image/png;base64,AAAA">', "figures that did not load"),
        ("console-error", '<img alt="line" src="{png}"><script>console.error("boom")</script>', "console errors"),
        ("no-figure", "<p>no figure</p>", "0 figure"),
    ],
)
def test_the_page_check_fails_a_page_that_is_not_self_contained(
    page: Page, tmp_path: Path, artifacts: Path, name: str, body: str, says: str
):
    path = _page(tmp_path, body.replace("{png}", f"data:image/png;base64,{_png()}"))
    with pytest.raises(AssertionError, match=says):
        assert_self_contained_page(page, path, artifacts / f"page-check-failing-{name}.png")
