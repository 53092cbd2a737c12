"""Is the model healthy on a day: each SLO's state that day, the incidents open then, their actions.

Everything is read back from the lake's control tables (``slo_evaluations``, ``incidents``,
``actions``) as of the end of the day, so a report rebuilt later says what was true then; an
action's state is the one it has now (who approved it and when), since that is what the reader
must act on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from closedloop.control.incidents import read_incidents
from closedloop.control.metric_catalog import metric_definition
from closedloop.control.serving import read_actions
from closedloop.control.slo import latest_per_subject, read_evaluations, subjects_worst_first
from closedloop.core.lake import Lake
from closedloop.core.periods import period_start
from closedloop.core.specs import ModelSpec

OK, BREACHING, BREACHED, NO_DATA, NOT_RUN = "ok", "breaching", "breached", "no data", "not run"
LEARNING = "learning"  # learned limits still gathering their reference: recorded, not judged
# How bad a day's state is, for the calendar: the worst SLO decides the colour.
STATE_RANK = {NOT_RUN: 0, NO_DATA: 1, LEARNING: 2, OK: 3, BREACHING: 4, BREACHED: 5}
LOOKBACK_DAYS = 30  # an SLO not judged in a month has no state worth showing


@dataclass(frozen=True)
class SubjectOnDay:
    """One subject of an SLO (a version, an input column) at the end of a day."""

    subject: str
    state: str
    value: float | None
    detail: str | None


@dataclass(frozen=True)
class SLOOnDay:
    """One SLO at the end of a day: its state, the value it was judged on and the bound it must keep."""

    slo: str
    metric: str
    unit: str
    severity: str
    bound: str
    state: str  # ok, breaching (bad, not for long enough yet), breached, learning, no data
    value: float | None
    version: str | None  # whose value: all, or the worst subject's version
    period: str | None  # the period the state was judged on (an hour for hourly SLOs)
    judged_today: bool  # False: the state is carried from an earlier period, the day had no data
    worst_today: str  # the worst state of the day's own periods (an hourly SLO may recover by the evening)
    breached_today: list[str]  # the day's periods in the breached state
    detail: str | None
    owner: str | None
    action: str
    subjects: tuple[SubjectOnDay, ...] = ()  # an SLO judged per version or input column: each one, worst first


@dataclass(frozen=True)
class Health:
    """The answer to "is this model healthy on this day?"."""

    model: str
    day: dt.date
    slos: list[SLOOnDay]
    open_incidents: list[dict]  # incident fields plus ``action_state`` and ``opened_today``
    closed_today: list[dict]

    @property
    def state(self) -> str:
        """The worst SLO state of the day, at its end or in any of its periods."""
        return worst_state([*(s.state for s in self.slos), *(s.worst_today for s in self.slos)])

    @property
    def pending_actions(self) -> list[dict]:
        return [i for i in self.open_incidents if i["action_state"] == "pending"]


def worst_state(states: Iterable[str]) -> str:
    return max(states, key=STATE_RANK.__getitem__, default=NOT_RUN)


def _end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)


def _state_of(row: Mapping) -> str:
    """A period's state as the calendar shows it: a breach carries over a period without data (the
    incident stays open); any other state is only as good as the period's data."""
    return row["state"] if row["value"] is not None or row["state"] == BREACHED else NO_DATA


def slos_on_day(lake: Lake, model: ModelSpec, day: dt.date) -> list[SLOOnDay]:
    """Each SLO's state at the end of ``day`` (its worst subject's latest judged evaluation up to then)
    and during it."""
    rows = read_evaluations(lake, model.name, day - dt.timedelta(days=LOOKBACK_DAYS), day).to_pylist()
    latest = latest_per_subject(rows, before=_end_of(day), judged_only=True)
    today: dict[str, list[Mapping]] = {}
    for row in rows:
        if row["day"] == day:
            today.setdefault(row["slo"], []).append(row)
    metrics = {m.name: m for m in model.metrics}
    status = []
    for slo in model.slos:
        subjects = subjects_worst_first(latest, slo.name)
        row = subjects[0] if subjects else None
        status.append(
            SLOOnDay(
                slo=slo.name,
                metric=slo.metric,
                unit=metric_definition(model, metrics[slo.metric]).unit,
                severity=slo.severity,
                bound=slo.describe_bound(),
                state=row["state"] if row else NO_DATA,
                value=row["value"] if row else None,
                version=row["version"] if row else None,
                period=row["period"] if row else None,
                judged_today=row is not None and period_start(row["period"]).date() == day,
                worst_today=worst_state(_state_of(r) for r in today.get(slo.name, [])),
                breached_today=sorted({r["period"] for r in today.get(slo.name, []) if r["state"] == BREACHED}),
                detail=row["detail"] if row else None,
                owner=slo.owner or metrics[slo.metric].owner,
                action=f"{slo.action.type} ({slo.action.mode})",
                subjects=tuple(
                    SubjectOnDay(r["subject"], r["state"], r["value"], r["detail"])
                    for r in subjects
                    if r["subject"] is not None
                ),
            )
        )
    return status


def _with_action(incident: Mapping, actions: Mapping[str, Mapping], day: dt.date) -> dict:
    action = actions.get(incident["action_id"] or "")
    return {
        **incident,
        "action_state": action["state"] if action else None,
        "action_decided_by": action["decided_by"] if action else None,
        "opened_today": period_start(incident["opened"]).date() == day,
    }


def health_on_day(lake: Lake, model: ModelSpec, day: dt.date) -> Health:
    """SLO states, incidents open at the end of ``day`` (with their actions) and those closed that day."""
    actions = {row["action_id"]: row for row in read_actions(lake, model.name)}
    end = _end_of(day)
    open_then, closed_today = [], []
    for incident in read_incidents(lake, model.name):
        if period_start(incident["opened"]) >= end:
            continue
        closed = period_start(incident["closed"]) if incident["closed"] else None
        if closed is None or closed >= end:
            open_then.append(_with_action(incident, actions, day))
        elif closed.date() == day:
            closed_today.append(_with_action(incident, actions, day))
    return Health(model.name, day, slos_on_day(lake, model, day), open_then, closed_today)


def day_states(lake: Lake, model: ModelSpec, start: dt.date, end: dt.date) -> dict[dt.date, str]:
    """The worst SLO state judged on each day from ``start`` to ``end``; days never judged are ``not run``.

    Read from the day's own evaluations: a day whose SLOs had no data is ``no data``, not the state
    carried from before, so the calendar shows the gaps.
    """
    states: dict[dt.date, list[str]] = {}
    for row in read_evaluations(lake, model.name, start, end).to_pylist():
        states.setdefault(row["day"], []).append(_state_of(row))
    days = (start + dt.timedelta(days=i) for i in range((end - start).days + 1))
    return {day: worst_state(states.get(day, [])) for day in days}
