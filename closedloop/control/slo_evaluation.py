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
from closedloop.control.readings import (
    Reading,
    input_drift_readings,
    metric_readings,
    route_readings,
    shadow_readings,
)
from closedloop.control.slo import (
    LEARNING,
    RECOVERED,
    SLO_EVALUATIONS_SCHEMA,
    SLOState,
    SubjectKey,
    latest_evaluations,
    latest_per_subject,
    next_state,
    subject_key,
    transition,
)
from closedloop.core.bounds import Bound
from closedloop.core.lake import Lake
from closedloop.core.names import ALL
from closedloop.core.periods import period_bounds, period_key, period_start
from closedloop.core.specs import ModelSpec, ProductionMetric, SLOSpec


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
    input column (of each version, with ``per_version``) when ``per_input``, each route likewise
    with ``per_route``, else the pooled one.

    Readings without a value or with fewer than ``min_rows`` rows behind them do not count; a
    subject without one this period has no data, which changes nothing.
    """
    judged = []
    for r in readings:
        if r.value is None or (r.rows is not None and r.rows < slo.min_rows) or (r.version != ALL) != slo.per_version:
            continue
        if per_input or slo.per_route:
            subject = f"{r.version}/{r.subject}" if slo.per_version else r.subject
        else:
            subject = r.version if slo.per_version else None
        judged.append(replace(r, subject=subject))
    return sorted(judged, key=lambda r: r.subject or "")


Reference = list[tuple[str, float]]  # (period, value): what learned limits are learned from


def _previous_states(previous: Iterable[Mapping] | pa.Table | None) -> dict[SubjectKey, tuple[SLOState, Reference]]:
    rows = previous.to_pylist() if isinstance(previous, pa.Table) else list(previous or [])
    latest = latest_per_subject(rows)
    return {
        key: (
            SLOState(
                row["state"],
                row["consecutive_breaches"],
                row["consecutive_ok"],
                row.get("breached_since") if row["state"] == "breached" else None,
            ),
            list(zip(row.get("reference_periods") or [], row.get("reference") or [], strict=True)),
        )
        for key, row in latest.items()
    }


def _shadow_reference(
    lake: Lake, model: ModelSpec, slo: SLOSpec, metric: ProductionMetric, day: dt.date, version: str
) -> Reference:
    """A new version's shadow days before ``day`` (scored, never served): its reference when it had them."""
    assert slo.learned is not None  # only learned limits have a reference
    found = []
    for back in range(slo.learned.periods, 0, -1):
        shadow_day = day - dt.timedelta(days=back)
        found += [
            (shadow_day.isoformat(), r.value)
            for r in shadow_readings(lake, model, metric, shadow_day)
            if r.version == version and r.value is not None and (r.rows is None or r.rows >= slo.min_rows)
        ]
    return found


def _judged_bound(slo: SLOSpec, reading: Reading, reference: Reference, period: dt.datetime) -> Bound | None:
    """The bound a subject is held to this period; None while learned limits are still learning."""
    written = slo.bound_for(reading.version if slo.per_version else None)
    if written is not None or slo.learned is None:
        return written
    if len(reference) < slo.learned.periods:
        return None
    values = [v for _, v in reference]
    if not slo.learned.seasonal:
        return slo.learned.bound(values)
    seasons = [slo.learned.season(period_start(p)) for p, _ in reference]
    return slo.learned.bound(values, seasons, slo.learned.season(period))


def _next_reference(
    slo: SLOSpec, reference: Reference, key: str, value: float | None, breach: bool | None
) -> Reference:
    """The reference after this period: the first periods are kept until there are enough; a trailing
    one slides on, never taking in a period that broke its limits."""
    if slo.learned is None or value is None:
        return reference
    if slo.learned.reference == "first":
        return reference if len(reference) >= slo.learned.periods else [*reference, (key, value)]
    return reference if breach else [*reference, (key, value)][-slo.learned.periods :]


def _limits(bound: Bound | None) -> dict:
    """The limits a row was judged against, as the record's columns."""
    if bound is None or bound.error is None:
        return {"comparison": None, "threshold": None, "band_low": None, "band_high": None}
    if isinstance(bound.error, tuple):
        return {"comparison": None, "threshold": None, "band_low": bound.error[0], "band_high": bound.error[1]}
    comparison = (">" if bound.type == "lower" else "<") + ("" if bound.strict else "=")
    return {"comparison": comparison, "threshold": bound.error, "band_low": None, "band_high": None}


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
    readings: dict[tuple[str, bool, bool], list[Reading]] = {}
    rows = []
    for slo in model.slos if slos is None else slos:
        metric = metrics[slo.metric]
        if metric.cadence != cadence:
            continue
        per_input = judged_per_input(model, slo)
        key_of_readings = (metric.name, per_input, slo.per_route)
        if key_of_readings not in readings:
            if per_input:
                window = parse_source(model, metric).window or "day"
                readings[key_of_readings] = input_drift_readings(lake, model, start.date(), window)
            elif slo.per_route:
                readings[key_of_readings] = route_readings(lake, model, metric, period)
            else:
                readings[key_of_readings] = metric_readings(lake, model, metric, period)
        # A period where no subject has data is still recorded, once, as no data.
        judged: list[Reading | None] = [*subject_readings(slo, readings[key_of_readings], per_input)] or [None]
        for reading in judged:
            subject = None if reading is None else reading.subject
            earlier, reference = before.get((slo.name, subject), (SLOState(), []))
            new_version = slo.per_version and cadence == "daily" and (slo.name, subject) not in before
            if reading is not None and slo.learned is not None and slo.learned.reference == "first" and new_version:
                reference = _shadow_reference(lake, model, slo, metric, start.date(), reading.version)
            bound = None if reading is None else _judged_bound(slo, reading, reference, start)
            value = None if reading is None else reading.value
            breach = None if value is None or bound is None else bound.breaks(value)
            after = next_state(slo, earlier, breach, key)
            if value is not None and bound is None and earlier.state in ("ok", LEARNING):
                after = SLOState(LEARNING)  # learned limits still learning: say so rather than judge
            change = transition(earlier, after)
            kept = _next_reference(slo, reference, key, value, breach)
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
                    "value": value,
                    "rows": None if reading is None else reading.rows,
                    "detail": None if reading is None else reading.detail,
                    **_limits(bound if bound is not None else slo.bound_for(None)),
                    "breach": breach,
                    "consecutive_breaches": after.consecutive_breaches,
                    "consecutive_ok": after.consecutive_ok,
                    "state": after.state,
                    "breached_since": earlier.breached_since if change == RECOVERED else after.breached_since,
                    "transition": change,
                    "severity": slo.severity,
                    "owner": slo.owner or metric.owner,
                    "reference": [v for _, v in kept] or None,
                    "reference_periods": [p for p, _ in kept] or None,
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
