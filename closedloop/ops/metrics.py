"""The ops metrics as the metric catalog knows them, apart from ``ops.stats`` (which computes them with
pandas) so that naming a metric, as the registry and the CLI do, does not import pandas."""

from closedloop.core.metric import Metric

# What ``ops.stats.ops_metrics`` reports per group.
OPS_METRICS = (
    Metric("requests", "requests", "neither", description="Predictions served."),
    Metric("errors", "requests", "lower", description="Predictions that logged an error."),
    Metric("fallbacks", "requests", "lower", description="Predictions served by the fallback."),
    Metric("error_rate", "share", "lower", description="Share of predictions that logged an error."),
    Metric("fallback_rate", "share", "lower", description="Share of predictions served by the fallback."),
    Metric("latency_p50_ms", "ms", "lower", description="Median latency."),
    Metric("latency_p95_ms", "ms", "lower", description="95th percentile latency."),
    Metric("latency_p99_ms", "ms", "lower", description="99th percentile latency."),
    Metric("latency_mean_ms", "ms", "lower", description="Mean latency."),
    Metric("cost_usd", "usd", "lower", description="Spend of the predictions that logged a cost."),
    Metric("cost_per_1k", "usd per 1,000", "lower", description="Mean cost of 1,000 predictions."),
)
