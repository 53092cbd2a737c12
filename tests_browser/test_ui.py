"""The Dagster UI over a simulated production, clicked through as a user would in Chromium.

The expected assets, checks and owners come from the code location's own definitions, so a
definition the UI does not show fails here. Selectors are roles and visible text (the UI's
CSS classes are generated); each test saves a screenshot to the artifacts folder.
"""

import datetime as dt
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from closedloop.registry import load_registry
from orchestration.definitions import build_definitions
from tests.helpers import TEST_REGISTRY, day, graphql

MODELS = ("fraud", "ticket_triage")
BACKFILLED_ASSET = "ticket_triage/predictions"  # no partition of it is materialized before the test
BACKFILL_DAYS = (day(0), day(1))
BACKFILL_SECONDS = 240


def _expected_assets(model: str) -> dict[str, dict]:
    """Each asset of ``model`` in the code location: its checks and owners."""
    graph = build_definitions(load_registry(TEST_REGISTRY)).resolve_asset_graph()
    return {
        key.to_user_string(): {
            "checks": sorted(check.name for check in graph.get(key).check_keys),
            "owners": graph.get(key).owners,
        }
        for key in graph.get_all_asset_keys()
        if key.path[0] == model
    }


def test_the_asset_graph_has_a_group_per_model(ui: Page, dagster_ui: str, artifacts: Path):
    ui.goto(f"{dagster_ui}/asset-groups")
    expect(ui.get_by_text("Global asset lineage")).to_be_visible()
    for model in MODELS:
        expect(ui.get_by_text(model, exact=True).first).to_be_visible()
    ui.screenshot(path=artifacts / "ui-asset-graph.png")


@pytest.mark.parametrize("model", MODELS)
def test_each_models_group_shows_every_asset_with_its_checks_and_owner(
    ui: Page, dagster_ui: str, artifacts: Path, model: str
):
    expected = _expected_assets(model)
    ui.goto(f"{dagster_ui}/locations/closedloop/asset-groups/{model}")
    for key in expected:
        expect(ui.get_by_text(key.split("/", 1)[1], exact=True).first).to_be_visible()
    ui.screenshot(path=artifacts / f"ui-group-{model}-lineage.png")

    ui.get_by_role("tab", name="List").click()
    asset_links = ui.locator(f'a[href^="/assets/{model}/"]')
    expect(asset_links.first).to_be_visible()
    listed = {link.get_attribute("href").removeprefix("/assets/") for link in asset_links.all()}
    assert listed == set(expected)
    ui.screenshot(path=artifacts / f"ui-group-{model}-list.png")

    for key, asset in expected.items():
        ui.goto(f"{dagster_ui}/assets/{key}")
        owners = [owner.removeprefix("team:") for owner in asset["owners"]]
        assert owners, f"{key} has no owner in the definitions"
        for owner in owners:
            expect(ui.get_by_text(owner, exact=True)).to_be_visible()
        ui.get_by_role("tab", name="Checks").click()
        if asset["checks"]:
            expect(ui.get_by_text(f"Checks ({len(asset['checks'])})", exact=True)).to_be_visible()
        else:
            expect(ui.get_by_text("No checks defined for this asset")).to_be_visible()
        for check in asset["checks"]:
            expect(ui.get_by_text(check, exact=True).first).to_be_attached()


def test_a_checks_history_lists_its_evaluations(ui: Page, dagster_ui: str, artifacts: Path):
    check = _expected_assets("fraud")["fraud/drift"]["checks"][0]
    ui.goto(f"{dagster_ui}/assets/fraud/drift?view=checks")
    ui.get_by_text(check, exact=True).first.click()
    ui.get_by_role("tab", name="Execution history").click()
    # Each evaluation is a row whose result tag reads Passed or Failed (a range run also lists Skipped ones).
    evaluation = ui.get_by_role("row").filter(has=ui.get_by_text(re.compile(r"^(Passed|Failed)$")))
    expect(evaluation.first).to_be_visible()
    ui.screenshot(path=artifacts / "ui-check-history.png")


def test_an_inline_figure_renders_in_the_assets_metadata(ui: Page, dagster_ui: str, artifacts: Path):
    ui.goto(f"{dagster_ui}/assets/fraud/drift")
    ui.get_by_role("row").filter(has_text="psi_heatmap").get_by_text("[Show Markdown]").click()
    figure = ui.get_by_role("dialog").locator("img").first
    expect(figure).to_be_visible()
    size = figure.evaluate("image => [image.complete, image.naturalWidth, image.naturalHeight]")
    assert size[0] and size[1] > 0 and size[2] > 0, f"psi_heatmap did not render: {size}"
    ui.screenshot(path=artifacts / "ui-inline-figure.png")


def test_a_two_day_backfill_launched_from_the_materialize_dialog_succeeds(ui: Page, dagster_ui: str, artifacts: Path):
    ui.goto(f"{dagster_ui}/assets/{BACKFILLED_ASSET}")
    ui.get_by_role("button", name="Materialize…").click()
    dialog = ui.get_by_role("dialog")
    partitions = dialog.get_by_role("textbox").first
    expect(partitions).to_be_visible()
    # The dialog shows the last 90 days of partitions by default; the simulated days may be older.
    show_all = dialog.get_by_text("Show all partitions")
    if show_all.count():
        show_all.click()
    partitions.fill(f"[{BACKFILL_DAYS[0]}...{BACKFILL_DAYS[1]}]")
    partitions.press("Enter")
    expect(dialog.get_by_text("2 partitions", exact=True)).to_be_visible()
    ui.screenshot(path=artifacts / "ui-materialize-dialog.png")
    dialog.get_by_role("button", name="Launch backfill").click()

    created = ui.get_by_text(re.compile(r"Created backfill \w+"))
    expect(created).to_be_visible()
    backfill_id = created.inner_text().split()[-1]
    runs = _wait_for_backfill_runs(dagster_ui, backfill_id)
    assert all(run["status"] == "SUCCESS" for run in runs), runs

    ui.goto(f"{dagster_ui}/runs/b/{backfill_id}")
    expect(ui.get_by_text(f"{BACKFILL_DAYS[0]}...{BACKFILL_DAYS[1]}", exact=True)).to_be_visible()
    expect(ui.get_by_role("link", name=BACKFILLED_ASSET.replace("/", " / ")).first).to_be_visible()
    expect(ui.get_by_text("100% completed")).to_be_visible()
    ui.screenshot(path=artifacts / "ui-backfill.png")


def _wait_for_backfill_runs(base_url: str, backfill_id: str) -> list[dict]:
    """The backfill's runs once one has failed or they have materialized both days (the daemon launches them)."""
    query = (
        f'{{ partitionBackfillOrError(backfillId: "{backfill_id}") '
        "{ ... on PartitionBackfill { runs(limit: 10) { runId status tags { key value } } } } }"
    )
    deadline = time.monotonic() + BACKFILL_SECONDS
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = graphql(base_url, query)["partitionBackfillOrError"]["runs"]
        if any(run["status"] in ("FAILURE", "CANCELED") for run in runs):
            return runs
        done = [run for run in runs if run["status"] == "SUCCESS"]
        if done and _days_of(done) >= set(BACKFILL_DAYS):
            return runs
        time.sleep(3)
    raise AssertionError(f"backfill {backfill_id}'s runs not done after {BACKFILL_SECONDS} s: {runs}")


def _days_of(runs: list[dict]) -> set[str]:
    """The partition days these runs materialized (one run per range under a single-run backfill policy)."""
    days = set()
    for run in runs:
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        if "dagster/partition" in tags:
            days.add(tags["dagster/partition"])
        elif "dagster/asset_partition_range_start" in tags:
            first = dt.date.fromisoformat(tags["dagster/asset_partition_range_start"])
            last = dt.date.fromisoformat(tags["dagster/asset_partition_range_end"])
            days |= {(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)}
    return days
