"""The registry's production metrics and the serving figures of two versions, day by day.

Stakeholders ask what changed in the numbers they own (the review rate, latency, cost), so each
registry metric is read per version and day exactly as its SLO reads it
(``closedloop.control.readings``), and the two versions' daily values are compared: paired by day
when both ran on the same days, as two samples of days otherwise. A window metric (a 30-day ROC
AUC) is not compared day by day: overlapping windows are not independent days; the quality
section compares it on the period itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from closedloop.compare import significance as sig
from closedloop.compare.request import PAIRED, ComparisonRequest, Period
from closedloop.compare.rows import Row, row
from closedloop.control.metric_catalog import metric_definition, parse_source
from closedloop.control.readings import metric_readings, shadow_readings
from closedloop.core.lake import Lake
from closedloop.core.specs import ModelSpec
from closedloop.ops.metrics import OPS_METRICS
from closedloop.ops.stats import OPS_STATS_SCHEMA, ops_metrics

Daily = Mapping[dt.date, float]
_OPS = {metric.name: metric for metric in OPS_METRICS}
_DAILY_OPS = ("latency_p50_ms", "latency_p95_ms", "cost_per_1k")
_RATES = {"error_rate": "errors", "fallback_rate": "fallbacks"}


def _days(period: Period) -> list[dt.date]:
    return [period.start + dt.timedelta(days=i) for i in range(period.days)]


def daily_difference(baseline: Daily, candidate: Daily, paired: bool) -> sig.Difference | None:
    """The difference of the mean daily values: paired on the days both have, else Welch over days."""
    if paired:
        days = sorted(set(baseline) & set(candidate))
        if len(days) < 2:
            return None
        return sig.paired_mean_difference(np.array([baseline[d] for d in days]), np.array([candidate[d] for d in days]))
    b, c = np.array(list(baseline.values())), np.array(list(candidate.values()))
    if len(b) < 2 or len(c) < 2:
        return None
    return sig.mean_difference(b.mean(), b.var(ddof=1), len(b), c.mean(), c.var(ddof=1), len(c))


@dataclass(frozen=True)
class DailyValues:
    """A registry metric's value per day for each version, and the rows behind them."""

    baseline: dict[dt.date, float]
    candidate: dict[dt.date, float]
    rows: int | None  # rows behind the smaller side, where the source counts them


@dataclass(frozen=True)
class Serving:
    """Each version's ``ops_stats`` over its period, read once, and its ops metrics per day."""

    stats: dict[str, pa.Table]
    daily: dict[str, pd.DataFrame]

    def values(self, version: str, name: str) -> dict[dt.date, float]:
        frame = self.daily[version]
        return {h.date(): v for h, v in zip(frame["hour"], frame[name], strict=True) if not np.isnan(v)}


def serving(lake: Lake, model: ModelSpec, request: ComparisonRequest) -> Serving:
    stats = {
        request.baseline: _ops_stats(lake, model, request.baseline, request.baseline_period),
        request.candidate: _ops_stats(lake, model, request.candidate, request.candidate_period),
    }
    return Serving(stats, {v: ops_metrics(_by_day(s), by=("hour",)) for v, s in stats.items()})


def daily_values(lake: Lake, model: ModelSpec, request: ComparisonRequest, ops: Serving) -> dict[str, DailyValues]:
    """Every registry metric that is read day by day (not a rolling window), per version and day.

    Metrics of the ops family come from the serving statistics already read (the same merge of a
    day's hours its SLO reads); the others are read per day as their SLO reads them.
    """
    days = sorted(set(_days(request.baseline_period)) | set(_days(request.candidate_period)))
    out = {}
    for metric in model.metrics:
        source = parse_source(model, metric)
        if source.kind == "rolling_eval":
            continue
        if source.kind == "ops":
            b, c = ops.values(request.baseline, source.metric), ops.values(request.candidate, source.metric)
            requests = [sum(ops.values(v, "requests").values()) for v in (request.baseline, request.candidate)]
            out[metric.name] = DailyValues(b, c, int(min(requests)) or None)
            continue
        values: dict[str, dict[dt.date, float]] = {request.baseline: {}, request.candidate: {}}
        rows = dict.fromkeys(values, 0)
        period = {request.baseline: request.baseline_period, request.candidate: request.candidate_period}
        for day in days:
            readings = metric_readings(lake, model, metric, day)
            if request.population == PAIRED:  # the candidate scored in shadow: its rows are in the shadow table
                readings = [r for r in readings if r.version != request.candidate]
                readings += [r for r in shadow_readings(lake, model, metric, day) if r.version == request.candidate]
            for reading in readings:
                version = reading.version
                if (
                    version in values
                    and reading.value is not None
                    and period[version].start <= day <= period[version].end
                ):
                    values[version][day] = reading.value
                    rows[version] += reading.rows or 0
        out[metric.name] = DailyValues(values[request.baseline], values[request.candidate], min(rows.values()) or None)
    return out


def production_rows(model: ModelSpec, request: ComparisonRequest, daily: dict[str, DailyValues]) -> list[Row]:
    """Each registry metric, mean of its daily values per version, with the difference's test."""
    paired_days = request.baseline_period == request.candidate_period
    out = []
    for metric in model.metrics:
        named = replace(metric_definition(model, metric), name=metric.name)
        if metric.name not in daily:
            out.append(
                row("production", named, None,
                    note=f"a rolling window ({metric.source}): compared on the period in the quality section")
            )  # fmt: skip
            continue
        values = daily[metric.name]
        b, c = values.baseline, values.candidate
        difference = daily_difference(b, c, paired_days)
        note = None if difference else "fewer than two days with a value for a version"
        out.append(
            row("production", named, difference,
                baseline=float(np.mean(list(b.values()))) if b else None,
                candidate=float(np.mean(list(c.values()))) if c else None,
                rows=values.rows, note=note)
        )  # fmt: skip
    return out


def _ops_stats(lake: Lake, model: ModelSpec, version: str, period: Period) -> pa.Table:
    stats = lake.read_range(model.name, "ops_stats", period.start, period.end, schema=OPS_STATS_SCHEMA)
    return stats.filter(pc.equal(stats["model_version"], version))


def _by_day(stats: pa.Table) -> pa.Table:
    """Hours folded into their day, so ops metrics come out per day."""
    hours = stats["hour"].to_pylist()
    days = [dt.datetime.combine(h.date(), dt.time(), h.tzinfo) for h in hours]
    return stats.set_column(0, "hour", pa.array(days, stats.schema.field("hour").type))


def operations(request: ComparisonRequest, ops: Serving) -> tuple[list[Row], dict]:
    """Latency, errors, fallbacks and cost per version, and the per-route figures of each."""
    stats = ops.stats
    if any(s.num_rows == 0 for s in stats.values()):
        return [], {}
    whole = {v: ops_metrics(s, by=("model_version",)).iloc[0] for v, s in stats.items()}
    b, c = whole[request.baseline], whole[request.candidate]
    out = []
    for name, count in _RATES.items():
        rates = sig.proportion_difference(b[count], b["requests"], c[count], c["requests"])
        out.append(row("operations", _OPS[name], rates, rows=int(min(b["requests"], c["requests"]))))
    paired = request.baseline_period == request.candidate_period
    for name in _DAILY_OPS:
        if np.isnan(b[name]) and np.isnan(c[name]):
            continue  # the model logs no cost (or no latency): nothing to compare
        difference = daily_difference(ops.values(request.baseline, name), ops.values(request.candidate, name), paired)
        out.append(
            row("operations", _OPS[name], difference, baseline=float(b[name]), candidate=float(c[name]),
                note="over the period; the test compares daily values")
        )  # fmt: skip
    routes = {
        v: ops_metrics(s, by=("route",))[["route", "requests", "latency_p95_ms", "cost_per_1k"]].to_dict("records")
        for v, s in stats.items()
    }
    return out, routes
