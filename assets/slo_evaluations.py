"""``<model>/slo_evaluations``: every SLO judged for every period, the record incidents are opened from."""

import datetime as dt

import dagster as dg
import pandas as pd
import pyarrow as pa

from assets.policy import model_asset_args
from checks.ops_guards import AS_OF_TAG, hours_to_judge
from closedloop.lake import Lake
from closedloop.names import checked_day
from closedloop.registry import ModelSpec
from closedloop.slo import (
    SLO_EVALUATIONS_SCHEMA,
    coverage_days_back,
    evaluate_slos,
    label_lag_days,
    latest_evaluations,
    record_evaluations,
)
from orchestration.partitions import run_days
from orchestration.resources import LakeResource

SAME_DAY_SOURCES = ("predictions", "ops_stats", "drift", "eval_stats")


def evaluate_day(lake: Lake, model: ModelSpec, day: dt.date, as_of: dt.datetime | None, now: dt.datetime) -> pa.Table:
    """The day's daily SLOs and its hourly SLOs hour by hour, each state carried from the period before."""
    previous = {row["slo"]: row for row in latest_evaluations(lake, model.name, day)}
    tables = []
    for period in [day, *hours_to_judge(day, as_of)]:
        rows = evaluate_slos(lake, model, period, list(previous.values()), now)
        previous.update({row["slo"]: row for row in rows.to_pylist()})
        tables.append(rows)
    return pa.concat_tables(tables) if tables else SLO_EVALUATIONS_SCHEMA.empty_table()


def build_slo_evaluations_asset(model: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        **model_asset_args(model, "slo_evaluations"),
        kinds={"parquet"},
        deps=[
            *(dg.AssetKey([model.name, name]) for name in SAME_DAY_SOURCES),
            # Label-based SLOs judge the latest window whose labels had matured; coverage looks some days back.
            dg.AssetDep(
                dg.AssetKey([model.name, "rolling_eval"]),
                partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-label_lag_days(model), end_offset=0),
            ),
            dg.AssetDep(
                dg.AssetKey([model.name, "outcomes"]),
                partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-coverage_days_back(model), end_offset=0),
            ),
        ],
        description=(
            f"Each of {model.name}'s SLOs judged for the day (daily SLOs) and for each of its hours (hourly SLOs): "
            "the metric's value, the threshold or band, consecutive breaching periods and the state (ok, "
            "breaching, breached), and the transitions (breached, recovered) the incident sensor opens and "
            "closes incidents on. The record the sensor and `closedloop status` read."
        ),
    )
    def slo_evaluations(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        tag = context.run.tags.get(AS_OF_TAG)
        as_of = pd.Timestamp(tag).to_pydatetime() if tag else None
        now = dt.datetime.now(dt.timezone.utc)
        breached, transitions = 0, []
        for key in run_days(context):
            day = checked_day(key)
            rows = evaluate_day(store, model, day, as_of, now)
            if rows.num_rows:
                record_evaluations(store, model.name, rows)
            for row in rows.to_pylist():
                breached += row["state"] == "breached"
                if row["transition"]:
                    transitions.append(f"{row['period']} {row['slo']} {row['transition']} ({row['metric']} = {row['value']:.4g})")
                    context.log.warning(f"{model.name}: {transitions[-1]}")
            context.log.info(f"{model.name}/slo_evaluations {day}: {rows.num_rows} evaluations")
        return dg.MaterializeResult(
            metadata={"breached_periods": breached, "transitions": dg.MetadataValue.json(transitions)}
        )

    return slo_evaluations
