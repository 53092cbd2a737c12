"""SLOs: a production metric's value for a period, judged against its SLO, with memory.

The value comes from ``control.readings`` (the sources are listed in ``control.metric_catalog``).
Every source reads all versions pooled and each version on its own. An SLO is judged per
*subject*, each with its own state: each version for an SLO with ``per_version``, each input
column for ``drift.drifting_inputs`` (when its bound asks for no drifting input at all), and the
pooled value (no subject) otherwise. So a second version, or a second column, that breaks the
SLO while the first is still breached is told on its own, and each recovers on its own. A value
backed by fewer than the SLO's ``min_rows`` rows is no data. A subject is breached after ``for``
consecutive breaching periods and recovers after ``recovery_periods`` consecutive ok periods; a
period without data changes nothing, so a gap in the data neither opens nor closes an incident.
Each evaluation is one ``slo_evaluations`` row per SLO, subject and period, the source of truth
for the incident sensor and the CLI; the rows where a subject's state turns breached or back to
ok carry the ``transition`` the sensor acts on.

This module holds the judging, the state machine and the lake record; ``control.slo_evaluation``
reads the values and evaluates, so that reading the record does not import the readings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from closedloop.core.lake import Lake
from closedloop.core.periods import period_bounds, period_start
from closedloop.core.specs import SLOSpec

BREACHED, RECOVERED = "breached", "recovered"  # transitions
LEARNING = "learning"  # learned limits without enough reference yet: the value is recorded, not judged

SLO_EVALUATIONS_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("slo", pa.string()),
        ("subject", pa.string()),  # who the evaluation is about: a version, an input column; null for pooled SLOs
        ("metric", pa.string()),
        ("source", pa.string()),
        ("cadence", pa.string()),
        ("period", pa.string()),  # YYYY-MM-DD for a day, YYYY-MM-DDTHH:00:00+00:00 for an hour
        ("day", pa.date32()),  # the lake partition the row lives in
        ("version", pa.string()),  # whose value it is: 'all' (pooled) or the subject's version
        ("value", pa.float64()),  # null: no data for the period
        ("rows", pa.int64()),  # rows behind the value, where the source counts them
        ("detail", pa.string()),  # what stands behind the value (the window, the drifting figure and its limit)
        ("comparison", pa.string()),
        ("threshold", pa.float64()),
        ("band_low", pa.float64()),
        ("band_high", pa.float64()),
        ("breach", pa.bool_()),  # null: no data
        ("consecutive_breaches", pa.int32()),
        ("consecutive_ok", pa.int32()),
        ("state", pa.string()),  # ok, breaching, breached, learning
        ("breached_since", pa.string()),  # period the current breach began (on a recovery: the breach that ended)
        ("transition", pa.string()),  # 'breached' when the state turns breached, 'recovered' when it turns ok again
        ("severity", pa.string()),
        ("owner", pa.string()),
        # Learned limits: the reference values (and their periods) the subject's next period is judged on.
        ("reference", pa.list_(pa.float64())),
        ("reference_periods", pa.list_(pa.string())),
        ("evaluated_at", pa.timestamp("us", tz="UTC")),
    ]
)


# The state machine


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


SubjectKey = tuple[str, str | None]  # (SLO, subject): one state machine


def subject_key(row: Mapping) -> SubjectKey:
    return row["slo"], row.get("subject")


def latest_per_subject(
    rows: Iterable[Mapping], *, before: dt.datetime | None = None, judged_only: bool = False
) -> dict[SubjectKey, Mapping]:
    """Each SLO and subject's latest evaluation among ``rows`` (by period), optionally only those of
    periods starting before ``before`` or only those that had data (a period without data changes no state)."""
    latest: dict[SubjectKey, Mapping] = {}
    for row in sorted(rows, key=lambda r: period_start(r["period"])):
        if (before is None or period_start(row["period"]) < before) and (not judged_only or row["value"] is not None):
            latest[subject_key(row)] = row
    return latest


STATE_RANK = {LEARNING: 0, "ok": 1, "breaching": 2, "breached": 3}
CURRENT_DAYS = 30  # a subject not judged within a month of its SLO's latest evaluation is gone (a retired version)


def subjects_worst_first(latest: Mapping[SubjectKey, Mapping], slo: str) -> list[Mapping]:
    """One SLO's current subjects (their latest evaluations), the worst state first, then by subject:
    the first says how the SLO stands. A subject still breached is current however old."""
    mine = [row for (name, _), row in latest.items() if name == slo]
    if not mine:
        return []
    newest = max(period_start(r["period"]) for r in mine)
    current = [
        r for r in mine
        if r["state"] == "breached" or newest - period_start(r["period"]) <= dt.timedelta(days=CURRENT_DAYS)
    ]  # fmt: skip
    return sorted(current, key=lambda r: (-STATE_RANK.get(r["state"], 0), r.get("subject") or ""))


# The lake record


def read_evaluations(lake: Lake, model: str, start: dt.date | None = None, end: dt.date | None = None) -> pa.Table:
    """Every ``slo_evaluations`` row of the days from ``start`` to ``end`` (inclusive), in file order."""
    return lake.read_range(model, "slo_evaluations", start, end, schema=SLO_EVALUATIONS_SCHEMA)


def latest_evaluations(lake: Lake, model: str, period: dt.date | dt.datetime, lookback_days: int = 30) -> list[dict]:
    """Each SLO and subject's latest evaluation strictly before ``period``: the ``previous`` of
    ``slo_evaluation.evaluate_slos``.

    Only the last ``lookback_days`` are read; a subject not evaluated in them starts over as ok.
    """
    start, _, _ = period_bounds(period)
    table = read_evaluations(lake, model, start.date() - dt.timedelta(days=lookback_days), start.date())
    return [dict(row) for row in latest_per_subject(table.to_pylist(), before=start).values()]


def record_evaluations(lake: Lake, model: str, rows: pa.Table) -> list:
    """Add rows to their day's ``slo_evaluations`` partitions, replacing the earlier rows of the same
    SLO and period (every subject's: a re-evaluated period's subjects are the new ones)."""
    rows = rows.cast(SLO_EVALUATIONS_SCHEMA)
    return [
        lake.upsert_partition(model, "slo_evaluations", day, rows.filter(pc.equal(rows["day"], day)), ("slo", "period"))
        for day in sorted(set(rows["day"].to_pylist()))
    ]
