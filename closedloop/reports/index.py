"""The pages above the daily reports: a calendar of every model's days and a cross-model summary.

The calendar is what a person scans in a second: one row per model and month, one cell per day
coloured by the day's worst SLO state, a mark on the days an incident opened, each cell linking
to the day's report when it has been built (and saying how to build it when not).
"""

from __future__ import annotations

import datetime as dt
from html import escape

from closedloop.control.incidents import read_incidents
from closedloop.control.slo import read_evaluations
from closedloop.core.html import page
from closedloop.core.lake import Lake
from closedloop.core.periods import period_start
from closedloop.core.specs import ModelSpec, Registry
from closedloop.reports.health import BREACHED, NOT_RUN, day_states, health_on_day
from closedloop.reports.page import STATE_COLOURS, STYLE, state_badge

CALENDAR_STYLE = (
    ".calendar td { padding: 0; border: 0; } .calendar th { font-weight: normal; font-size: .8rem; }\n"
    ".day { display: block; width: 1.55rem; height: 1.55rem; margin: 1px; border-radius: 3px; color: white;"
    " font-size: .7rem; line-height: 1.55rem; text-align: center; text-decoration: none; }\n"
    ".legend span { margin-right: .8rem; }\n"
)


def evaluated_days(lake: Lake, model: ModelSpec) -> tuple[dt.date, dt.date] | None:
    """The first and last day with SLO evaluations."""
    days = [path.parent.name.removeprefix("date=") for path in lake.partition_files(model.name, "slo_evaluations")]
    return (dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])) if days else None


def _incident_days(lake: Lake, model: ModelSpec) -> dict[dt.date, list[str]]:
    opened: dict[dt.date, list[str]] = {}
    for incident in read_incidents(lake, model.name):
        opened.setdefault(period_start(incident["opened"]).date(), []).append(incident["slo"])
    return opened


def _breached_slos(lake: Lake, model: ModelSpec, start: dt.date, end: dt.date) -> dict[dt.date, set[str]]:
    slos: dict[dt.date, set[str]] = {}
    for row in read_evaluations(lake, model.name, start, end).to_pylist():
        if row["state"] == BREACHED:
            slos.setdefault(row["day"], set()).add(row["slo"])
    return slos


def _cell(lake: Lake, model: ModelSpec, day: dt.date, state: str, breached: set[str], opened: list[str]) -> str:
    words = f"{day}: {state}" + (f" ({', '.join(sorted(breached))})" if breached else "")
    words += f"; incident opened: {', '.join(opened)}" if opened else ""
    mark = "!" if opened else str(day.day)
    style = f"background: {STATE_COLOURS[state]}" + ("; color: #57606a" if state == NOT_RUN else "")
    if lake.report_path(model.name, day).exists():
        return f"<a class='day' style='{style}' href='{model.name}/{day}.html' title='{escape(words)}'>{mark}</a>"
    words += f"; no report built: closedloop report --model {model.name} --date {day}"
    return f"<span class='day' style='{style}' title='{escape(words)}'>{mark}</span>"


def _calendar(lake: Lake, model: ModelSpec) -> str:
    span = evaluated_days(lake, model)
    if span is None:
        return f"<h2>{escape(model.name)}</h2><p>No day judged yet: run the pipeline (closedloop run).</p>"
    start, end = span
    states = day_states(lake, model, start, end)
    breached = _breached_slos(lake, model, start, end)
    opened = _incident_days(lake, model)
    header = "".join(f"<th>{d}</th>" for d in range(1, 32))
    rows = []
    month = dt.date(start.year, start.month, 1)
    while month <= end:
        cells = []
        for number in range(1, 32):
            try:
                day = month.replace(day=number)
            except ValueError:
                cells.append("<td></td>")
                continue
            inside = start <= day <= end
            cells.append(
                f"<td>{_cell(lake, model, day, states[day], breached.get(day, set()), opened.get(day, []))}</td>"
                if inside
                else "<td></td>"
            )
        rows.append(f"<tr><th>{month:%b %Y}</th>{''.join(cells)}</tr>")
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return (
        f"<h2>{escape(model.name)}</h2><p class='note'>{escape(model.description or '')} Owner: "
        f"{escape(model.owner)}.</p><table class='calendar'><thead><tr><th></th>{header}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _legend() -> str:
    return (
        "<p class='legend'>"
        + "".join(state_badge(state) + " " for state in STATE_COLOURS)
        + "<span><strong>!</strong> an incident opened that day</span></p>"
    )


def index_html(lake: Lake, registry: Registry) -> str:
    body = (
        "<nav><a href='summary.html'>all models today</a></nav><h1>closedloop: every model, every day</h1>"
        "<p class='note'>Each cell is a day, coloured by its worst SLO state; click a day for its report.</p>"
        + _legend()
        + "".join(_calendar(lake, model) for model in registry.models.values())
    )
    return page("closedloop reports", body, STYLE + CALENDAR_STYLE)


def summary_html(lake: Lake, registry: Registry) -> str:
    """Each model on its latest judged day: state, SLOs not ok, open incidents, actions waiting."""
    rows = []
    for model in registry.models.values():
        span = evaluated_days(lake, model)
        if span is None:
            rows.append(f"<tr><td>{escape(model.name)}</td><td colspan='5'>not run yet</td></tr>")
            continue
        day = span[1]
        health = health_on_day(lake, model, day)
        bad = ", ".join(f"{s.slo} ({s.state})" for s in health.slos if s.state not in ("ok", "no data")) or "none"
        link = (
            f"<a href='{model.name}/{day}.html'>{day}</a>" if lake.report_path(model.name, day).exists() else str(day)
        )
        rows.append(
            f"<tr><td>{escape(model.name)}<br><span class='note'>{escape(model.owner)}</span></td><td>{link}</td>"
            f"<td>{state_badge(health.state)}</td><td>{escape(bad)}</td><td>{len(health.open_incidents)}</td>"
            f"<td>{len(health.pending_actions)}</td></tr>"
        )
    head = (
        "<tr><th>model</th><th>latest day</th><th>state</th><th>SLOs not ok</th><th>open incidents</th>"
        "<th>actions waiting for approval</th></tr>"
    )
    body = (
        "<nav><a href='index.html'>every day</a></nav><h1>closedloop: all models on their latest day</h1>"
        f"<table id='summary'><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return page("closedloop: all models", body, STYLE)
