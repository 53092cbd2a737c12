"""``<model>/ops_stats``: per hour, version and route, what serving cost in time, errors and money."""

import datetime as dt

import dagster as dg

from assets.policy import figure_metadata, model_asset_args
from closedloop.core.names import checked_day
from closedloop.core.specs import ModelSpec
from closedloop.ops.figures import fallback_figure, latency_cost_figure
from closedloop.ops.stats import compute_ops_stats, ops_metrics, read_ops_stats
from wiring.day_records import record_day
from wiring.partitions import run_days
from wiring.progress import log_day
from wiring.resources import LakeResource

FIGURE_DAYS = 7
DAY_FIGURES = ("requests", "error_rate", "fallback_rate", "latency_p95_ms", "cost_per_1k", "cost_usd")


def build_ops_stats_asset(model: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        **model_asset_args(model, "ops_stats"),
        kinds={"parquet", "duckdb"},
        deps=[dg.AssetKey([model.name, "predictions"])],
        description=(
            f"How {model.name}'s service held up for its callers and what it cost: per hour, model version and "
            "route, requests, errors, fallbacks, latency (p50/p95/p99 within 1.3%, from a log-spaced histogram) "
            "and cost. Each day's page has the day's requests, error and fallback rates, p95 latency and cost; "
            "rows merge by summing, so any set of hours or days is cheap. Today's partition is refreshed every hour."
        ),
    )
    def ops_stats(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        days = [checked_day(key) for key in run_days(context)]
        lines = [
            "| day | requests | error rate | fallback rate | p95 ms | cost per 1k | cost |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for position, day in enumerate(days, 1):
            stats = compute_ops_stats(store.partition_path(model.name, "predictions", day))
            store.write_partition(model.name, "ops_stats", day, stats)
            totals = ops_metrics(stats, by=()).iloc[0] if stats.num_rows else None
            figures = {"rows": stats.num_rows, "requests": 0}
            if totals is not None:
                lines.append(
                    f"| {day} | {int(totals.requests):,} | {totals.error_rate:.2%} | {totals.fallback_rate:.2%} | "
                    f"{totals.latency_p95_ms:,.0f} | {totals.cost_per_1k:.2f} | {totals.cost_usd:,.2f} |"
                )
                figures.update({name: totals[name] for name in DAY_FIGURES})
            path = store.partition_path(model.name, "ops_stats", day)
            record_day(context, day, {**figures, "partition_file": dg.MetadataValue.path(str(path))})
            log_day(
                context,
                position,
                len(days),
                f"{model.name}/ops_stats {day}: {stats.num_rows} hour x version x route rows",
            )
        last = max(days)
        recent = read_ops_stats(store, model.name, last - dt.timedelta(days=FIGURE_DAYS - 1), last)
        title = f"{model.name}, {FIGURE_DAYS} days to {last}"
        return dg.MaterializeResult(
            metadata={
                "per_day": dg.MetadataValue.md("\n".join(lines)),
                "figures_for_day": str(last),
                "latency_and_cost": figure_metadata(
                    store, model, "ops_latency_cost", last, latency_cost_figure(recent, model.ops, title)
                ),
                "fallbacks": figure_metadata(
                    store, model, "ops_fallbacks", last, fallback_figure(recent, model.ops, title)
                ),
            }
        )

    return ops_stats
