"""SLOs: a production metric's value for a period, judged against its SLO, with memory.

The value comes from ``control.readings`` (the sources are listed in ``control.metric_catalog``).
Every source reads all versions pooled and each version on its own; an SLO with
``per_version`` is held to its worst version. A value backed by fewer than the SLO's
``min_rows`` rows is no data. An SLO is breached after ``for`` consecutive breaching periods
and recovers after ``recovery_periods`` consecutive ok periods; a period without data changes
nothing, so a gap in the data neither opens nor closes an incident. Each evaluation is one
``slo_evaluations`` row, the source of truth for the incident sensor and the CLI; the rows
where the state turns breached or back to ok carry the ``transition`` the sensor acts on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

import pyarrow as pa
import pyarrow.compute as pc

from closedloop.control.readings import Reading, metric_readings
from closedloop.core.lake import Lake
from closedloop.core.names import ALL
from closedloop.core.periods import period_bounds, period_key, period_start
from closedloop.core.specs import ModelSpec, SLOSpec

BREACHED, RECOVERED = "breached", "recovered"  # transitions

SLO_EVALUATIONS_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("slo", pa.string()),
        ("metric", pa.string()),
        ("source", pa.string()),
        ("cadence", pa.string()),
        ("period", pa.string()),  # YYYY-MM-DD for a day, YYYY-MM-DDTHH:00:00+00:00 for an hour
        ("day", pa.date32()),  # the lake partition the row lives in
        ("version", pa.string()),  # whose value it is: 'all' (pooled) or, per version, the worst version
        ("value", pa.float64()),  # null: no data for the period
        ("rows", pa.int64()),  # rows behind the value, where the source counts them
        ("detail", pa.string()),  # what stands behind the value (each version's value, the drifting columns)
        ("comparison", pa.string()),
        ("threshold", pa.float64()),
        ("band_low", pa.float64()),
        ("band_high", pa.float64()),
        ("breach", pa.bool_()),  # null: no data
        ("consecutive_breaches", pa.int32()),
        ("consecutive_ok", pa.int32()),
        ("state", pa.string()),
        ("breached_since", pa.string()),  # period the current breach began (on a recovery: the breach that ended)
        ("transition", pa.string()),  # 'breached' when the state turns breached, 'recovered' when it turns ok again
        ("severity", pa.string()),
        ("owner", pa.string()),
        ("evaluated_at", pa.timestamp("us", tz="UTC")),
    ]
)


# Judging and the state machine


def is_breach(slo: SLOSpec, value: float) -> bool:
    """True when ``value`` breaks the SLO: outside the band, or failing the comparison with the threshold."""
    return slo.bound.breaks(value)


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


@dataclass(frozen=True)
class SLOState:
    """Where an SLO stands after a period: its state, the run lengths that decide the next, and
    the period its current breach began."""

    state: str = "ok"
    consecutive_breaches: int = 0
    consecutive_ok: int = 0
    breached_since: str | None = None


def next_state(slo: SLOSpec, before: SLOState, breach: bool | None, period: str = "") -> SLOState:
    """The state after one more period: breached after ``for`` breaches in a row, ok again after
    ``recovery_periods`` ok periods in a row; no data (None) leaves everything as it was."""
    if breach is None:
        return before
    if breach:
        count = before.consecutive_breaches + 1
        if before.state == "breached":
            return SLOState("breached", count, 0, before.breached_since)
        if count >= slo.for_periods:
            return SLOState("breached", count, 0, period)
        return SLOState("breaching", count, 0)
    ok = before.consecutive_ok + 1
    if before.state == "breached" and ok < slo.recovery_periods:
        return SLOState("breached", 0, ok, before.breached_since)
    return SLOState("ok", 0, ok)


def transition(before: SLOState, after: SLOState) -> str | None:
    """``breached`` when the SLO has just become breached, ``recovered`` when it has just recovered."""
    if after.state == "breached" and before.state != "breached":
        return BREACHED
    if before.state == "breached" and after.state == "ok":
        return RECOVERED
    return None


def latest_per_slo(
    rows: Iterable[Mapping], *, before: dt.datetime | None = None, judged_only: bool = False
) -> dict[str, Mapping]:
    """Each SLO's latest evaluation among ``rows`` (by period), optionally only those of periods
    starting before ``before`` or only those that had data (a period without data changes no state)."""
    latest: dict[str, Mapping] = {}
    for row in sorted(rows, key=lambda r: period_start(r["period"])):
        if (before is None or period_start(row["period"]) < before) and (not judged_only or row["value"] is not None):
            latest[row["slo"]] = row
    return latest


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


# The lake record


def read_evaluations(lake: Lake, model: str, start: dt.date | None = None, end: dt.date | None = None) -> pa.Table:
    """Every ``slo_evaluations`` row of the days from ``start`` to ``end`` (inclusive), in file order."""
    return lake.read_range(model, "slo_evaluations", start, end, schema=SLO_EVALUATIONS_SCHEMA)


def latest_evaluations(lake: Lake, model: str, period: dt.date | dt.datetime, lookback_days: int = 30) -> list[dict]:
    """Each SLO's latest evaluation strictly before ``period``: the ``previous`` of ``evaluate_slos``.

    Only the last ``lookback_days`` are read; an SLO not evaluated in them starts over as ok.
    """
    start, _, _ = period_bounds(period)
    table = read_evaluations(lake, model, start.date() - dt.timedelta(days=lookback_days), start.date())
    return [dict(row) for row in latest_per_slo(table.to_pylist(), before=start).values()]


def record_evaluations(lake: Lake, model: str, rows: pa.Table) -> list:
    """Add rows to their day's ``slo_evaluations`` partitions, replacing earlier rows of the same SLO and period."""
    rows = rows.cast(SLO_EVALUATIONS_SCHEMA)
    return [
        lake.upsert_partition(model, "slo_evaluations", day, rows.filter(pc.equal(rows["day"], day)), ("slo", "period"))
        for day in sorted(set(rows["day"].to_pylist()))
    ]
