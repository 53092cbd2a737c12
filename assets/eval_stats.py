"""``<model>/eval_stats``: a day's outcomes reduced to score counts that add up across days."""

import dagster as dg
import pyarrow.compute as pc

from assets.policy import model_asset_args
from closedloop.core.lake import LakeError
from closedloop.core.names import ALL
from closedloop.core.specs import ModelSpec
from closedloop.evaluation.eval_stats import eval_stats
from closedloop.evaluation.score_bins import BINS, SCORE_GRID
from wiring.automation import downstream_condition
from wiring.day_records import record_day
from wiring.partitions import run_days
from wiring.resources import LakeResource


def build_eval_stats_asset(model: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        **model_asset_args(model, "eval_stats"),
        kinds={"parquet", "duckdb"},
        deps=[dg.AssetKey([model.name, "outcomes"])],
        automation_condition=downstream_condition(model),
        description=(
            f"The day's {model.name} scores and labels in a form any window's quality is computed from quickly: "
            f"predictions counted per model version and segment on {BINS:,} fixed score bins (every 0.001, and "
            "finer below 0.01 and above 0.99), split by label (positive, negative, not labeled yet), label maturity "
            "and decision. rolling_eval and version comparisons sum the days of a window, so they never re-read "
            "raw predictions; metrics from these counts match exact ones within stated binning bounds (ROC AUC "
            "within 0.002, even for scores squeezed into a tail). Follows the day's outcomes as late labels arrive."
        ),
    )
    def eval_stats_asset(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        lines = ["| day | predictions | labeled | matured labels | cells |", "|---|---:|---:|---:|---:|"]
        for day in run_days(context):
            outcomes = store.read_partition(model.name, "outcomes", day)
            if outcomes is None:
                raise LakeError(
                    f"no outcomes partition for {model.name} on {day}; materialize {model.name}/outcomes first"
                )
            stats = eval_stats(outcomes, model, day)
            store.write_partition(model.name, "eval_stats", day, stats)
            whole = stats.filter(pc.equal(stats["segment"], ALL))
            labeled = whole.filter(pc.not_equal(whole["label_state"], "unlabeled"))
            matured = whole.filter(whole["matured"])
            counts = {
                "predictions": pc.sum(whole["n"]).as_py() or 0,
                "labeled": pc.sum(labeled["n"]).as_py() or 0,
                "matured_labels": pc.sum(matured["n"]).as_py() or 0,
                "cells": stats.num_rows,
            }
            lines.append(
                f"| {day} | {counts['predictions']:,} | {counts['labeled']:,} | {counts['matured_labels']:,} | "
                f"{counts['cells']:,} |"
            )
            path = store.partition_path(model.name, "eval_stats", day)
            record_day(context, day, {**counts, "partition_file": dg.MetadataValue.path(str(path))})
        return dg.MaterializeResult(
            metadata={"bins": BINS, "score_grid": SCORE_GRID, "per_day": dg.MetadataValue.md("\n".join(lines))}
        )

    return eval_stats_asset
