"""Evaluating SLOs: each period's readings (``control.readings``) judged by the state machine of
``control.slo``, carried from the lake record.

Apart from ``control.slo`` because the readings import every stage that computes a metric (and
pandas), which reading the record, as the CLI and the reports do, does not need.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import cast

import pyarrow as pa

from closedloop.control.readings import Reading, metric_readings
from closedloop.control.slo import (
    RECOVERED,
    SLO_EVALUATIONS_SCHEMA,
    SLOState,
    is_breach,
    latest_evaluations,
    latest_per_slo,
    next_state,
    transition,
)
from closedloop.core.lake import Lake
from closedloop.core.names import ALL
from closedloop.core.periods import period_bounds, period_key
from closedloop.core.specs import ModelSpec, SLOSpec


def judged_reading(slo: SLOSpec, readings: Iterable[Reading]) -> Reading | None:
    """The reading the SLO is judged on: the pooled one, or with ``per_version`` the worst version's.

    Readings without a value or with fewer than ``min_rows`` rows behind them do not count; None
    when nothing is left (no data).
    """
    usable = [
        r for r in readings
        if r.value is not None and (r.rows is None or r.rows >= slo.min_rows) and (r.version != ALL) == slo.per_version
    ]  # fmt: skip
    if not usable:
        return None
    worst = max(usable, key=lambda r: slo.bound.shortfall(cast(float, r.value)))  # usable readings have values
    if not slo.per_version:
        return worst
    others = "; ".join(f"{r.version} {r.value:.4g}" for r in sorted(usable, key=lambda r: r.version))
    return Reading(
        worst.version, worst.value, worst.rows, "; ".join(filter(None, [f"versions: {others}", worst.detail]))
    )


def _previous_states(previous: Iterable[Mapping] | pa.Table | None) -> dict[str, SLOState]:
    rows = previous.to_pylist() if isinstance(previous, pa.Table) else list(previous or [])
    latest = latest_per_slo(rows)
    return {
        name: SLOState(
            row["state"],
            row["consecutive_breaches"],
            row["consecutive_ok"],
            row.get("breached_since") if row["state"] == "breached" else None,
        )
        for name, row in latest.items()
    }


def evaluate_slos(
    lake: Lake,
    model: ModelSpec,
    period: dt.date | dt.datetime,
    previous: Iterable[Mapping] | pa.Table | None,
    evaluated_at: dt.datetime,
    slos: Iterable[SLOSpec] | None = None,
) -> pa.Table:
    """``slo_evaluations`` rows of the SLOs (``slos``, default all the model's) whose metric has the
    period's cadence (a date: daily, an hour: hourly).

    ``previous`` holds earlier evaluation rows (at least each SLO's latest; see
    ``latest_evaluations``); an SLO without one starts ok. Deterministic given the lake and inputs.
    """
    start, _, cadence = period_bounds(period)
    key = period_key(period)
    metrics = {m.name: m for m in model.metrics}
    before = _previous_states(previous)
    readings: dict[str, list[Reading]] = {}
    rows = []
    for slo in model.slos if slos is None else slos:
        metric = metrics[slo.metric]
        if metric.cadence != cadence:
            continue
        if metric.name not in readings:
            readings[metric.name] = metric_readings(lake, model, metric, period)
        reading = judged_reading(slo, readings[metric.name])
        breach = None if reading is None or reading.value is None else is_breach(slo, reading.value)
        earlier = before.get(slo.name, SLOState())
        after = next_state(slo, earlier, breach, key)
        change = transition(earlier, after)
        rows.append(
            {
                "model": model.name,
                "slo": slo.name,
                "metric": metric.name,
                "source": metric.source,
                "cadence": cadence,
                "period": key,
                "day": start.date(),
                "version": None if reading is None else reading.version,
                "value": None if reading is None else reading.value,
                "rows": None if reading is None else reading.rows,
                "detail": None if reading is None else reading.detail,
                "comparison": slo.comparison,
                "threshold": slo.threshold,
                "band_low": slo.band[0] if slo.band else None,
                "band_high": slo.band[1] if slo.band else None,
                "breach": breach,
                "consecutive_breaches": after.consecutive_breaches,
                "consecutive_ok": after.consecutive_ok,
                "state": after.state,
                "breached_since": earlier.breached_since if change == RECOVERED else after.breached_since,
                "transition": change,
                "severity": slo.severity,
                "owner": slo.owner or metric.owner,
                "evaluated_at": evaluated_at,
            }
        )
    return pa.Table.from_pylist(rows, schema=SLO_EVALUATIONS_SCHEMA)


def evaluate_periods(
    lake: Lake,
    model: ModelSpec,
    periods: list[dt.date | dt.datetime],
    slos: Iterable[SLOSpec],
    evaluated_at: dt.datetime,
) -> pa.Table:
    """``slos`` judged for each period in order (a day, then its hours), each state carried from the
    period before, starting from the lake's latest evaluations before the first period."""
    slos = list(slos)
    previous = {row["slo"]: row for row in latest_evaluations(lake, model.name, periods[0])} if periods else {}
    tables = [SLO_EVALUATIONS_SCHEMA.empty_table()]
    for period in periods:
        rows = evaluate_slos(lake, model, period, list(previous.values()), evaluated_at, slos)
        previous.update({row["slo"]: row for row in rows.to_pylist()})
        tables.append(rows)
    return pa.concat_tables(tables)
