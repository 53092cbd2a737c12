"""The daily report: health as of the day, the calendar's day states, figures that say when they have no data."""

import datetime as dt

import pyarrow as pa
import pytest

from closedloop.control.incidents import INCIDENTS_SCHEMA, record_incident
from closedloop.control.serving import request_action
from closedloop.control.slo import SLO_EVALUATIONS_SCHEMA, record_evaluations
from closedloop.core.specs import RunbookAction
from closedloop.evaluation import figures as evaluation_figures
from closedloop.evaluation.score_bins import ScoreCounts
from closedloop.ops import figures as ops_figures
from closedloop.ops.stats import OPS_STATS_SCHEMA
from closedloop.reports import figures as report_figures
from closedloop.reports.daily import build_daily_report
from closedloop.reports.health import BREACHED, NO_DATA, NOT_RUN, OK, day_states, health_on_day
from closedloop.reports.index import index_html
from closedloop.reports.page import daily_report_html
from closedloop.reports.publish import write_daily_report, write_index
from orchestration import cli

D1, D2, D3 = dt.date(2026, 10, 5), dt.date(2026, 10, 6), dt.date(2026, 10, 7)
NOW = dt.datetime(2026, 10, 8, 6, 0, tzinfo=dt.UTC)


def _evaluation(day: dt.date, value: float | None, state: str, transition: str | None = None) -> dict:
    breach = None if value is None else value < 0.005
    return {
        "model": "fraud", "slo": "review_rate_in_band", "metric": "review_rate", "source": "predictions",
        "cadence": "daily", "period": day.isoformat(), "day": day, "version": "v12", "value": value, "rows": 500,
        "detail": None, "comparison": None, "threshold": None, "band_low": 0.005, "band_high": 0.06,
        "breach": breach, "consecutive_breaches": int(bool(breach)), "consecutive_ok": int(breach is False),
        "state": state, "breached_since": D2.isoformat() if state == BREACHED else None, "transition": transition,
        "severity": "page", "owner": "team:payments-ops", "evaluated_at": NOW,
    }  # fmt: skip


@pytest.fixture
def breached_on_d2(registry, lake):
    """review_rate_in_band: ok on D1, breached on D2 (incident opened, rollback proposed), recovered on D3."""
    rows = [_evaluation(D1, 0.017, OK), _evaluation(D2, 0.0015, BREACHED, "breached"), _evaluation(D3, 0.02, OK)]
    record_evaluations(lake, "fraud", pa.Table.from_pylist(rows, schema=SLO_EVALUATIONS_SCHEMA))
    fraud = registry.model("fraud")
    action = request_action(
        lake, fraud, RunbookAction(type="rollback", mode="propose"), why="fraud/review_rate_in_band/2026-10-06",
        who="closedloop incident job", now=NOW,
    )  # fmt: skip
    incident = dict.fromkeys(INCIDENTS_SCHEMA.names)
    incident.update(
        incident_id="fraud/review_rate_in_band/2026-10-06", model="fraud", slo="review_rate_in_band",
        metric="review_rate", version="v12", value=0.0015, opened="2026-10-06", closed="2026-10-07", state="closed",
        severity="page", action="rollback", action_mode="propose", action_id=action["action_id"], day=D2,
        action_result=f"pending approval: closedloop approve {action['action_id']}",
    )  # fmt: skip
    record_incident(lake, incident)
    return fraud, action


def test_health_is_what_was_true_at_the_end_of_the_day(breached_on_d2, lake):
    fraud, action = breached_on_d2
    before, during, after = (health_on_day(lake, fraud, day) for day in (D1, D2, D3))
    review = {h.day: next(s for s in h.slos if s.slo == "review_rate_in_band") for h in (before, during, after)}
    assert [review[d].state for d in (D1, D2, D3)] == [OK, BREACHED, OK]
    assert review[D2].value == pytest.approx(0.0015) and review[D2].version == "v12" and review[D2].judged_today
    assert before.open_incidents == [] and after.open_incidents == []
    [incident] = during.open_incidents
    assert incident["opened_today"] and incident["action_state"] == "pending"
    assert during.pending_actions == [incident] and during.state == BREACHED
    assert [i["incident_id"] for i in after.closed_today] == [incident["incident_id"]]
    # An SLO no evaluation has judged yet is "no data", not ok.
    assert next(s for s in during.slos if s.slo == "auc_30d_floor").state == NO_DATA


def test_an_hourly_slo_breached_in_the_afternoon_makes_the_day_unhealthy_though_it_ends_ok(lake, registry):
    triage = registry.model("ticket_triage")
    hours = []
    for hour, value, state in ((9, 2300.0, OK), (10, 12000.0, BREACHED), (11, 2400.0, OK)):
        row = _evaluation(D2, value, state)
        period = dt.datetime(2026, 10, 6, hour, tzinfo=dt.UTC).isoformat()
        row.update(model="ticket_triage", slo="p95_latency_ceiling", metric="latency_p95_ms", cadence="hourly",
                   period=period, version="all", breach=value > 4000, band_low=None, band_high=None)  # fmt: skip
        hours.append(row)
    record_evaluations(lake, "ticket_triage", pa.Table.from_pylist(hours, schema=SLO_EVALUATIONS_SCHEMA))
    health = health_on_day(lake, triage, D2)
    p95 = next(s for s in health.slos if s.slo == "p95_latency_ceiling")
    assert (p95.state, p95.worst_today, p95.breached_today) == (OK, BREACHED, ["2026-10-06T10:00:00+00:00"])
    assert health.state == BREACHED
    html = daily_report_html(build_daily_report(lake, triage, D2), NOW)
    assert "Not healthy today: an SLO was breached during the day (recovered by its end)." in html
    assert "breached today in the hour of 10:00 UTC" in html


def test_the_calendar_tells_days_not_run_from_days_without_data(lake, registry):
    fraud = registry.model("fraud")
    rows = [_evaluation(D1, None, OK), _evaluation(D2, 0.0015, BREACHED, "breached"), _evaluation(D3, None, BREACHED)]
    record_evaluations(lake, "fraud", pa.Table.from_pylist(rows, schema=SLO_EVALUATIONS_SCHEMA))
    states = day_states(lake, fraud, D1 - dt.timedelta(days=1), D3)
    # A breach carries over a day without data: the incident is still open.
    assert list(states.values()) == [NOT_RUN, NO_DATA, BREACHED, BREACHED]


def test_the_report_opens_with_the_verdict_and_the_action_waiting_for_approval(breached_on_d2, lake, registry):
    fraud, action = breached_on_d2
    html = daily_report_html(build_daily_report(lake, fraud, D2), NOW)
    status = html.index("id='status'")
    assert status < html.index("id='trends'") < html.index("id='quality'") < html.index("id='operations'")
    first_screen = html[status : html.index("id='trends'")]
    assert "Not healthy: an SLO is breached." in first_screen
    assert f"closedloop approve {action['action_id']}" in first_screen and "(new today)" in first_screen
    assert 'src="http' not in html and "<script" not in html  # self-contained
    # A lake with SLO verdicts but no outcomes says so instead of drawing nothing.
    assert "No outcomes yet" in html


def test_the_index_links_built_days_and_says_how_to_build_the_others(breached_on_d2, lake, registry):
    fraud, _ = breached_on_d2
    _, path = write_daily_report(lake, fraud, D2, NOW)
    assert path == lake.reports_dir / "fraud" / "2026-10-06.html" and path.read_text().startswith("<!DOCTYPE html>")
    index = write_index(lake, registry)
    html = index.read_text()
    assert "href='fraud/2026-10-06.html'" in html and "incident opened: review_rate_in_band" in html
    assert "closedloop report --model fraud --date 2026-10-05" in html  # D1 was judged, its page not built
    assert "No day judged yet" in index_html(lake, registry)  # ticket_triage has no evaluations
    assert (lake.reports_dir / "summary.html").exists()


@pytest.fixture
def no_data_notes(monkeypatch) -> list[str]:
    """Every 'nothing to draw' message a figure writes instead of empty axes."""
    notes: list[str] = []
    for module in (evaluation_figures, ops_figures, report_figures):
        original = module.no_data
        monkeypatch.setattr(
            module, "no_data", lambda axes, message, _o=original: notes.append(message) or _o(axes, message)
        )
    return notes


def test_figures_of_empty_data_say_so(no_data_notes, registry):
    import pandas as pd

    fraud = registry.model("fraud")
    empty = ScoreCounts.empty()
    evaluation_figures.reliability_figure({"v11": empty})
    evaluation_figures.threshold_figure(empty, 0.5)
    evaluation_figures.score_histogram_figure(empty, 0.5)
    ops_figures.fallback_figure(OPS_STATS_SCHEMA.empty_table(), fraud.ops)
    history = pd.DataFrame(columns=["slo", "value", "time", "state", "breach"])
    report_figures.slo_trends_figure(fraud, history, {}, D2, 90)
    coverage = pd.DataFrame(columns=["prediction_date", "coverage"])
    report_figures.label_coverage_figure(fraud, coverage, D2, 90)
    assert len(no_data_notes) == 4 + len(fraud.slos) + 1, no_data_notes
    assert all(note.endswith(".") for note in no_data_notes)


@pytest.fixture
def cli_on_the_test_lake(registry, monkeypatch):
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(registry.lake))
    monkeypatch.setenv("CLOSEDLOOP_LANDING", str(registry.landing))


def test_report_command_writes_the_page_and_prints_where(breached_on_d2, cli_on_the_test_lake, capsys):
    assert cli.main(["report", "--model", "fraud", "--date", "2026-10-06"]) == 0
    out = capsys.readouterr().out
    assert "fraud on 2026-10-06: breached, 1 open incident(s), 1 action(s) waiting for approval" in out
    assert "2026-10-06.html" in out and "index.html" in out


def test_report_command_without_a_judged_day_says_what_to_run(cli_on_the_test_lake, capsys):
    assert cli.main(["report", "--model", "ticket_triage"]) == 2
    assert "run the pipeline first" in capsys.readouterr().err
