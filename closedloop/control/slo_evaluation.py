"""Evaluating SLOs: each period's readings (``control.readings``) judged by the state machine of
``control.slo``, carried from the lake record.

Apart from ``control.slo`` because the readings import every stage that computes a metric (and
pandas), which reading the record, as the CLI and the reports do, does not need.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import replace

import pyarrow as pa

from closedloop.control.metric_catalog import DRIFTING_INPUTS, parse_source
from closedloop.control.readings import Reading, input_drift_readings, metric_readings
from closedloop.control.slo import (
    RECOVERED,
    SLO_EVALUATIONS_SCHEMA,
    SLOState,
    SubjectKey,
    is_breach,
    latest_evaluations,
    latest_per_subject,
    next_state,
    subject_key,
    transition,
)
from closedloop.core.lake import Lake
from closedloop.core.names import ALL
from closedloop.core.periods import period_bounds, period_key
from closedloop.core.specs import ModelSpec, SLOSpec


def judged_per_input(model: ModelSpec, slo: SLOSpec) -> bool:
    """Whether an SLO is judged per input column: one on ``drift.drifting_inputs`` whose bound asks for
    no drifting input at all (holds at 0, breaks at 1). One that tolerates some drifting inputs
    ("at most 3") is about their number, judged pooled."""
    metric = next(m for m in model.metrics if m.name == slo.metric)
    source = parse_source(model, metric)
    is_count = source.kind == "drift" and source.metric == DRIFTING_INPUTS.name
    return is_count and not slo.bound.breaks(0) and slo.bound.breaks(1)


def subject_readings(slo: SLOSpec, readings: Iterable[Reading], per_input: bool = False) -> list[Reading]:
    """The readings the SLO is judged on, one per subject: each version with ``per_version``, each
    input column (of each version, with ``per_version``) when ``per_input``, else the pooled one.

    Readings without a value or with fewer than ``min_rows`` rows behind them do not count; a
    subject without one this period has no data, which changes nothing.
    """
    judged = []
    for r in readings:
        if r.value is None or (r.rows is not None and r.rows < slo.min_rows) or (r.version != ALL) != slo.per_version:
            continue
        if per_input:
            subject = f"{r.version}/{r.subject}" if slo.per_version else r.subject
        else:
            subject = r.version if slo.per_version else None
        judged.append(replace(r, subject=subject))
    return sorted(judged, key=lambda r: r.subject or "")


def _previous_states(previous: Iterable[Mapping] | pa.Table | None) -> dict[SubjectKey, SLOState]:
    rows = previous.to_pylist() if isinstance(previous, pa.Table) else list(previous or [])
    latest = latest_per_subject(rows)
    return {
        key: SLOState(
            row["state"],
            row["consecutive_breaches"],
            row["consecutive_ok"],
            row.get("breached_since") if row["state"] == "breached" else None,
        )
        for key, row in latest.items()
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

    ``previous`` holds earlier evaluation rows (at least each SLO and subject's latest; see
    ``latest_evaluations``); a subject without one starts ok. Deterministic given the lake and inputs.
    """
    start, _, cadence = period_bounds(period)
    key = period_key(period)
    metrics = {m.name: m for m in model.metrics}
    before = _previous_states(previous)
    readings: dict[tuple[str, bool], list[Reading]] = {}
    rows = []
    for slo in model.slos if slos is None else slos:
        metric = metrics[slo.metric]
        if metric.cadence != cadence:
            continue
        per_input = judged_per_input(model, slo)
        if (metric.name, per_input) not in readings:
            readings[metric.name, per_input] = (
                input_drift_readings(lake, model, start.date(), parse_source(model, metric).window or "day")
                if per_input
                else metric_readings(lake, model, metric, period)
            )
        # A period where no subject has data is still recorded, once, as no data.
        judged: list[Reading | None] = [*subject_readings(slo, readings[metric.name, per_input], per_input)] or [None]
        for reading in judged:
            subject = None if reading is None else reading.subject
            breach = None if reading is None or reading.value is None else is_breach(slo, reading.value)
            earlier = before.get((slo.name, subject), SLOState())
            after = next_state(slo, earlier, breach, key)
            change = transition(earlier, after)
            rows.append(
                {
                    "model": model.name,
                    "slo": slo.name,
                    "subject": subject,
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
    previous = {subject_key(row): row for row in latest_evaluations(lake, model.name, periods[0])} if periods else {}
    tables = [SLO_EVALUATIONS_SCHEMA.empty_table()]
    for period in periods:
        rows = evaluate_slos(lake, model, period, list(previous.values()), evaluated_at, slos)
        previous.update({subject_key(row): row for row in rows.to_pylist()})
        tables.append(rows)
    return pa.concat_tables(tables)
