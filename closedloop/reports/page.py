"""The daily report as one HTML page, read top-down: is the model healthy today, then why.

First screen: the day's verdict, every SLO with its state, value and bound, and the open
incidents with their action and what waits for approval. Below: the production metrics'
trends, quality and calibration per version, the labels the verdict rests on, drift and
operations. Figures are embedded; links go only to sibling pages (the index, other days).
"""

from __future__ import annotations

import datetime as dt
from html import escape

from closedloop.core.html import embedded_png, page
from closedloop.core.periods import period_in_words
from closedloop.core.plotting import version_colours
from closedloop.reports.daily import OPS_DAYS, SPEND_DAYS, TREND_DAYS, DailyReport, metric_rows
from closedloop.reports.health import BREACHED, BREACHING, LEARNING, NO_DATA, NOT_RUN, OK, SLOOnDay

STATE_COLOURS = {
    OK: "#1a7f37", BREACHING: "#bf8700", BREACHED: "#cf222e", LEARNING: "#0969da", NO_DATA: "#8c959f",
    NOT_RUN: "#d0d7de",
}  # fmt: skip
STYLE = (
    ".verdict { font-size: 1.15rem; padding: .6rem 1rem; border-left: 6px solid; background: #f6f8fa; }\n"
    ".state { display: inline-block; padding: 0 .45rem; border-radius: .6rem; color: white; font-weight: 600;"
    " font-size: .8rem; white-space: nowrap; }\n"
    ".pending { background: #fff8c5; }\n"
    "td.spark img { width: 10rem; margin: 0; }\n"
    + "".join(f".state-{key.replace(' ', '-')} {{ background: {colour}; }}\n" for key, colour in STATE_COLOURS.items())
)
RECOVERED_TODAY = "recovered today"
VERDICTS = {
    OK: "Healthy: every SLO with data is met.",
    BREACHING: "Watch: an SLO is outside its bound, not yet for long enough to open an incident.",
    BREACHED: "Not healthy: an SLO is breached.",
    RECOVERED_TODAY: "Not healthy today: an SLO was breached during the day (recovered by its end).",
    LEARNING: "No verdict yet: the SLOs with data are still learning their limits from their reference days.",
    NO_DATA: "No verdict: no SLO had enough data to judge.",
    NOT_RUN: "No verdict: no SLO was judged; run the pipeline for this day.",
}


def state_badge(state: str) -> str:
    return f'<span class="state state-{state.replace(" ", "-")}">{escape(state)}</span>'


def number(value: float | None, unit: str = "") -> str:
    """A value in the unit a reader expects: shares as percents, milliseconds and dollars rounded."""
    if value is None or value != value:  # None, or NaN (nothing logged)
        return "–"
    if unit == "share":
        return f"{value:.2%}"
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit.startswith("usd"):
        return f"${value:,.2f}"
    return f"{value:.4g}"


def _during_the_day(s: SLOOnDay) -> str:
    """What the end-of-day state hides: an hourly SLO breached in the afternoon and recovered by night."""
    if not s.breached_today or s.state == BREACHED:
        return ""
    hours = [period[11:16] for period in s.breached_today if len(period) > 10]
    if not hours:
        return "<br><span class='note'>breached today</span>"
    when = f"the hour of {hours[0]}" if len(hours) == 1 else f"{len(hours)} hours, {hours[0]} to {hours[-1]}"
    return f"<br><span class='note'>breached today in {when} UTC</span>"


def _subjects(s: SLOOnDay) -> str:
    """The subjects not ok (each version, each input column), with the figure behind each."""
    bad = [t for t in s.subjects if t.state != "ok"]
    if not bad:
        return f"<br><span class='note'>all {len(s.subjects)} ok</span>" if len(s.subjects) > 1 else ""
    told = [f"{escape(t.subject)} {escape(t.state)}" + (f": {escape(t.detail)}" if t.detail else "") for t in bad]
    return f"<br><span class='note'>{'<br>'.join(told)}</span>"


def _slo_rows(slos: list[SLOOnDay], sparklines: dict[str, bytes]) -> str:
    head = (
        "<tr><th>SLO</th><th>state</th><th>value</th><th>bound</th><th>last 30 days</th><th>judged on</th>"
        "<th>severity</th><th>owner</th><th>runbook</th></tr>"
    )
    rows = []
    for s in slos:
        judged = escape(period_in_words(s.period) if s.period else "never")
        judged += "" if s.judged_today or s.period is None else " (no data today)"
        spark = sparklines.get(s.slo)
        thumbnail = embedded_png(spark, f"{s.slo}, last 30 days") if spark else ""
        whose = f" ({escape(s.subjects[0].subject)})" if s.subjects else ""
        rows.append(
            f"<tr><td>{escape(s.slo)}<br><span class='note'>{escape(s.metric)}</span></td>"
            f"<td>{state_badge(s.state)}{_during_the_day(s)}</td>"
            f"<td>{number(s.value, s.unit)}{whose}"
            f"{_subjects(s)}</td><td>{escape(s.bound)}</td><td class='spark'>{thumbnail}</td><td>{judged}</td>"
            f"<td>{escape(s.severity)}</td><td>{escape(s.owner or '')}</td><td>{escape(s.action)}</td></tr>"
        )
    return f"<table id='slos'><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _incident_rows(incidents: list[dict], empty: str, units: dict[str, str]) -> str:
    if not incidents:
        return f"<p>{escape(empty)}</p>"
    head = (
        "<tr><th>incident</th><th>opened</th><th>value</th><th>severity</th><th>action</th>"
        "<th>what happened / what to do</th></tr>"
    )
    rows = []
    for i in incidents:
        pending = i["action_state"] == "pending"
        result = i["action_result"] or ""
        if i["action_state"] not in (None, "pending"):
            result = f"{i['action_state']}" + (f" by {i['action_decided_by']}" if i["action_decided_by"] else "")
        new = " <strong>(new today)</strong>" if i["opened_today"] else ""
        scope = f" ({escape(i['version'])})" if i["version"] not in (None, "all") else ""
        row_class = " class='pending'" if pending else ""
        rows.append(
            f"<tr{row_class}><td>{escape(i['slo'])}{new}<br>"
            f"<span class='note'>{escape(i['incident_id'])}</span></td><td>{escape(period_in_words(i['opened']))}</td>"
            f"<td>{number(i['value'], units.get(i['slo'], ''))}{scope}</td><td>{escape(i['severity'])}</td>"
            f"<td>{escape(i['action'])} ({escape(i['action_mode'])})</td>"
            f"<td>{f'<strong>{escape(result)}</strong>' if pending else escape(result)}</td></tr>"
        )
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _status(report: DailyReport) -> str:
    health = report.health
    units = {s.slo: s.unit for s in health.slos}
    state = health.state
    recovered = state == BREACHED and all(s.state != BREACHED for s in health.slos)
    verdict = VERDICTS[RECOVERED_TODAY if recovered else state]
    pending = health.pending_actions
    waiting = "".join(
        f"<li><strong>{escape(i['action'])}</strong> for {escape(i['slo'])} waits for approval: "
        f"<code>{escape((i['action_result'] or '').removeprefix('pending approval: '))}</code></li>"
        for i in pending
    )
    return (
        "<section id='status'>"
        f"<p class='verdict' style='border-color: {STATE_COLOURS[state]}'>{state_badge(state)} "
        f"{escape(verdict)}"
        + (f" {len(health.open_incidents)} incident(s) open." if health.open_incidents else "")
        + "</p>"
        + (f"<ul class='pending'>{waiting}</ul>" if waiting else "")
        + "<h2>SLOs at the end of the day</h2>"
        + _slo_rows(health.slos, report.sparklines)
        + "<h2>Open incidents</h2>"
        + _incident_rows(health.open_incidents, "No incident is open.", units)
        + ("<h3>Closed today</h3>" + _incident_rows(health.closed_today, "", units) if health.closed_today else "")
        + "</section>"
    )


def _metrics(report: DailyReport) -> str:
    rows = "".join(
        f"<tr><td>{escape(m['name'])}</td><td>{escape(m['kind'])}</td><td>{escape(m['description'])}</td>"
        f"<td>{escape(m['source'])} ({escape(m['cadence'])})</td><td>{escape(', '.join(m['slos']) or 'none')}</td>"
        f"<td>{escape(m['owner'] or '')}</td></tr>"
        for m in metric_rows(report.model)
    )
    head = "<tr><th>metric</th><th>kind</th><th>what it means</th><th>source</th><th>SLOs</th><th>owner</th></tr>"
    return (
        f"<h2 id='trends'>Production metrics, {TREND_DAYS} days</h2>"
        + _figure(report, "slo_trends", "SLO trends")
        + f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"
    )


def _figure(report: DailyReport, name: str, alt: str) -> str:
    return embedded_png(report.figures.get(name), alt, "; ".join(report.missing.values()) or "no data for it")


def _quality(report: DailyReport) -> str:
    colours = version_colours(report.model.versions_by_release)
    thresholds = "".join(
        f"<tr><td style='color: {colours.get(v, '#222')}'><strong>{escape(v)}</strong></td>"
        f"<td>{number(report.model.threshold(v))}</td><td>{number(t)}</td></tr>"
        for v, t in report.thresholds.items()
    )
    rate = report.model.evaluation.approved_decision_rate
    keep = (
        f"<table><thead><tr><th>version</th><th>threshold</th><th>threshold keeping the approved rate "
        f"{number(rate, 'share')}</th></tr></thead><tbody>{thresholds}</tbody></table>"
        if thresholds
        else ""
    )
    return (
        "<h2 id='quality'>Quality and calibration, per version</h2>"
        "<p class='note'>Solid lines rest on matured labels, dotted ones on the labels known so far, dashed ones "
        "are estimates from calibrated scores (before the labels mature).</p>"
        + _figure(report, "quality_over_time", "quality over time")
        + _figure(report, "reliability", "reliability")
        + _figure(report, "decision_rate", "decision rate")
        + keep
        + _figure(report, "threshold_tradeoff", "threshold trade-off")
    )


def _labels(report: DailyReport) -> str:
    x = report.labels
    if not x:
        return "<h2 id='labels'>Labels</h2><p>No outcomes yet: no prediction day has been joined to its labels.</p>"
    delay = (
        f" Half the labels arrived within {x['delay_p50_hours'] / 24:.1f} days, nine in ten within "
        f"{x['delay_p90_hours'] / 24:.1f} days."
        if x["delay_p50_hours"] is not None
        else ""
    )
    return (
        "<h2 id='labels'>Labels the verdict rests on</h2>"
        f"<p>Of the {x['predictions']:,} predictions of the last {x['window_days']} days, "
        f"<strong>{x['labeled']:,} ({number(x['coverage'], 'share')})</strong> had a label by the end of the day; "
        f"{x['matured_days']} of those days are past the {x['maturity_days']}-day maturity "
        f"({x['matured_labeled']:,} labels).{delay}</p>" + _figure(report, "label_coverage", "label coverage")
    )


def _drift(report: DailyReport) -> str:
    rows = "".join(
        f"<tr><td>{escape(r['column'])}</td><td>{escape(r['window'])}</td><td>{escape(r['metric'])}</td>"
        f"<td>{number(r['value'])}</td><td>{number(r['threshold'])}</td><td>{escape(r['status'])}</td></tr>"
        for r in report.drift_alerts
    )
    table = (
        "<table><thead><tr><th>input</th><th>window</th><th>metric</th><th>value</th><th>limit</th><th>status</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else "<p>No input is past its drift limits today.</p>"
    )
    return (
        "<h2 id='drift'>Drift against the baseline</h2>"
        + table
        + _figure(report, "psi_heatmap", "PSI heatmap")
        + _figure(report, "drift_distributions", "top drifting inputs")
        + _figure(report, "score_by_version", "score distribution by version")
    )


def _operations(report: DailyReport) -> str:
    rows = "".join(
        f"<tr><td>{escape(str(r['route']))}</td><td>{int(r['requests']):,}</td><td>{number(r['error_rate'], 'share')}"
        f"</td><td>{number(r['fallback_rate'], 'share')}</td><td>{number(r['latency_p95_ms'], 'ms')}</td>"
        f"<td>{number(r['cost_per_1k'], 'usd')}</td><td>{number(r['cost_usd'], 'usd')}</td></tr>"
        for r in report.routes
    )
    head = (
        "<tr><th>route</th><th>requests</th><th>errors</th><th>fallbacks</th><th>p95 latency</th>"
        "<th>cost per 1k</th><th>cost</th></tr>"
    )
    return (
        f"<h2 id='operations'>Operations (hours of the last {OPS_DAYS} days, spend of the last {SPEND_DAYS})</h2>"
        + (f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>" if rows else "<p>No requests today.</p>")
        + _figure(report, "latency_cost", "latency and cost")
        + _figure(report, "fallbacks", "fallbacks and errors")
        + _figure(report, "daily_spend", "daily spend")
    )


def _nav(report: DailyReport) -> str:
    before, after = report.day - dt.timedelta(days=1), report.day + dt.timedelta(days=1)
    return (
        "<nav><a href='../index.html'>all days</a><a href='../summary.html'>all models</a>"
        f"<a href='{before}.html'>← {before}</a><a href='{after}.html'>{after} →</a>"
        "<a href='#trends'>trends</a><a href='#quality'>quality</a><a href='#labels'>labels</a>"
        "<a href='#drift'>drift</a><a href='#operations'>operations</a></nav>"
    )


def daily_report_html(report: DailyReport, built_at: dt.datetime) -> str:
    model = report.model
    body = (
        _nav(report)
        + f"<h1>{escape(model.name)} on {report.day}</h1>"
        + f"<p class='note'>{escape(model.description or '')} Owner: {escape(model.owner)}. "
        f"Built {built_at:%Y-%m-%d %H:%M} UTC from the lake; actions show their state at that time.</p>"
        + _status(report)
        + _metrics(report)
        + _quality(report)
        + _labels(report)
        + _drift(report)
        + _operations(report)
    )
    return page(f"{model.name} on {report.day}", body, STYLE)
