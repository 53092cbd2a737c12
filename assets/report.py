"""``<model>/report``: the page a model owner opens in the morning, one per day, under ``<lake>/reports/``."""

import datetime as dt
from pathlib import Path

import dagster as dg

from assets.policy import model_asset_args
from closedloop.core.names import checked_day
from closedloop.core.specs import ModelSpec, Registry
from closedloop.reports.health import BREACHED, Health
from closedloop.reports.publish import write_daily_report, write_index
from wiring.day_records import record_day
from wiring.partitions import run_days
from wiring.progress import log_day
from wiring.resources import LakeResource

REPORT_INPUTS = ("rolling_eval", "drift", "ops_stats", "outcomes")


def report_key(model: ModelSpec) -> dg.AssetKey:
    return dg.AssetKey([model.name, "report"])


def _day_metadata(health: Health, path: Path) -> dict:
    """What a day's page says first, as numbers the UI can plot over the partitions, and where it is."""
    return {
        "state": health.state,
        "slos_breached": sum(s.state == BREACHED for s in health.slos),
        "open_incidents": len(health.open_incidents),
        "actions_waiting_for_approval": len(health.pending_actions),
        "report": dg.MetadataValue.path(str(path)),
    }


def build_report_asset(model: ModelSpec, registry: Registry) -> dg.AssetsDefinition:
    @dg.asset(
        **model_asset_args(model, "report"),
        kinds={"html"},
        deps=[dg.AssetKey([model.name, name]) for name in REPORT_INPUTS],
        description=(
            f"Is {model.name} healthy today? One self-contained HTML page per day: every SLO's state with its "
            "value and bound, the open incidents and the actions waiting for approval, then the production "
            "metrics' 90-day trends, quality and calibration per version, the labels the verdict rests on, drift "
            "and operations. Built after the day's SLO checks and incident handling (its own job, "
            f"{model.name}_report); the calendar of every day is <lake>/reports/index.html."
        ),
    )
    def report(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        now = dt.datetime.now(dt.UTC)
        healths = []
        days = run_days(context)
        for position, key in enumerate(days, 1):
            built, path = write_daily_report(store, model, checked_day(key), now)
            health = built.health
            log_day(context, position, len(days), f"{model.name}/report {key}: {health.state}, {path}")
            record_day(context, key, _day_metadata(health, path))
            healths.append(health)
        index = write_index(store, registry)
        last = healths[-1]
        return dg.MaterializeResult(
            metadata={
                **_day_metadata(last, store.report_path(model.name, last.day)),
                "index": dg.MetadataValue.path(str(index)),
            }
        )

    return report
