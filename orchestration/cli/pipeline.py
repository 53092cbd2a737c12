"""Commands that make data: ``simulate``, ``run`` (a date range in-process) and ``demo`` (both, then the scorecard)."""

import argparse
import dataclasses
import datetime as dt
import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from closedloop.control.status import incident_summaries
from closedloop.core.environment import prepare_environment
from closedloop.core.specs import Registry
from orchestration.cli.common import (
    UserError,
    check_within_partitions,
    emit,
    incident_lines,
    lake_of,
    load,
    progress,
    this_command,
)


def cmd_simulate(args: argparse.Namespace) -> int:
    from closedloop.simulator import simulate

    start = {"start": args.start} if args.start else {}
    with progress(args.days, "simulating", args.json, unit="day") as bar:
        result = simulate(Path(args.out), days=args.days, seed=args.seed, on_day=lambda _: bar.update(), **start)
    payload = {
        "out": str(result.out),
        "start": result.start.isoformat(),
        "days": result.days,
        "seed": result.seed,
        "rows": result.rows,
        "truth": str(result.truth_path),
    }
    text = f"Simulated {result.days} days from {result.start} into {result.out}\n" + "\n".join(
        f"  {model}: " + ", ".join(f"{count:,} {table}" for table, count in tables.items())
        for model, tables in result.rows.items()
    )
    emit(payload, args.json, text + f"\n  incidents: {result.truth_path}")
    return 0


def _materialize(registry: Registry, models: list[str], start: dt.date, end: dt.date, quiet: bool) -> list:
    import dagster as dg

    from orchestration.runner import count_steps, materialize_range, waiting_notice

    for name in models:
        check_within_partitions(registry, name, start, end)
    if end < start:
        raise UserError(f"--end {end} is before --start {start}")
    instance = dg.DagsterInstance.get()
    with progress(count_steps(registry, models), f"materializing {start}..{end}", quiet) as bar:
        outcomes = materialize_range(
            registry,
            models,
            start,
            end,
            instance,
            on_step=lambda model, step: bar.set_postfix_str(f"{model}: {step}") or bar.update(),
            on_wait=lambda model, lock: bar.write(waiting_notice(model, lock), file=sys.stderr),
        )
    return outcomes


def _failures(outcomes: list) -> list[str]:
    return [f"{o.model}: {o.failure} (run {o.run_id})" for o in outcomes if not o.success]


def cmd_run(args: argparse.Namespace) -> int:
    prepare_environment()
    registry = load(args)
    models = [args.model] if args.model else list(registry.models)
    for name in models:
        registry.model(name)
    outcomes = _materialize(registry, models, args.start, args.end, args.json)
    incident_runs = _handle_incidents(registry)
    report_runs = _reports(registry, models, args.end)
    lake = lake_of(registry)
    summary = {o.model: o.ingested for o in outcomes}
    failures = _failures(outcomes + incident_runs + report_runs)
    incidents = incident_summaries(lake, models)
    warnings = [
        f"nothing landed for {m} from {args.start} to {args.end} in {lake.landing / m / 'predictions'} (the landing "
        f"zone of {registry.path}: its landing: key, or CLOSEDLOOP_LANDING)"
        for m in models
        if summary[m]["predictions"]["failed_day"] is None and not summary[m]["predictions"]["landed"]
    ]
    warnings += [
        f"{m}: {path} is in the landing zone but no day reads it (a day is a folder date=YYYY-MM-DD)"
        for m in models
        for path in lake.misnamed_landing(m, "predictions")
    ]
    payload = {
        "start": args.start,
        "end": args.end,
        "warnings": warnings,
        "runs": [dataclasses.asdict(o) for o in outcomes],
        "incident_runs": [dataclasses.asdict(o) for o in incident_runs],
        "report_runs": [dataclasses.asdict(o) for o in report_runs],
        "ingest": summary,
        "incidents": incidents,
        "reports": {m: str(lake.report_path(m, args.end)) for m in models},
    }
    text = "\n".join(
        [
            *warnings,
            _summary_text(summary),
            "Checks that failed:",
            *_failed_check_lines(outcomes),
            "Incidents:",
            *incident_lines(incidents),
            f"Reports of {args.end} (every day: {lake.reports_dir / 'index.html'}):",
            *(f"  {lake.report_path(m, args.end)}" for m in models),
        ]
    )
    emit(payload, args.json, text + "".join(f"\nFAILED {line}" for line in failures))
    if failures:
        print(f"closedloop run: {failures[0]}", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from closedloop.simulator import DEFAULT_START, simulate

    dagster_home = prepare_environment()
    registry = load(args)
    missing = {"fraud", "ticket_triage"} - set(registry.models)
    if missing:
        raise UserError(
            f"the demo needs models {sorted(missing)} in {registry.path}; run it with the project's config/models.yaml"
        )
    start, end = DEFAULT_START, DEFAULT_START + dt.timedelta(days=args.days - 1)
    with progress(args.days, "simulating production", args.json, unit="day") as bar:
        simulation = simulate(
            registry.landing, days=args.days, seed=args.seed, start=start, on_day=lambda _: bar.update()
        )
    models = list(registry.models)
    outcomes = _materialize(registry, models, start, end, args.json)
    incident_runs = _handle_incidents(registry)
    report_runs = _reports(registry, models, end)
    lake = lake_of(registry)
    index = _incident_day_reports(lake, registry, args.json)
    from closedloop.control.scorecard import score

    summary = {o.model: o.ingested for o in outcomes}
    failures = _failures(outcomes + incident_runs + report_runs)
    incidents = incident_summaries(lake, models)
    truth = json.loads(simulation.truth_path.read_text())
    maturity = {name: registry.model(name).labels.maturity_days for name in models}
    scorecard = score(truth, {m: [i for i in incidents if i["model"] == m] for m in models}, maturity)
    comparisons = _demo_comparisons(lake, registry)
    payload = {
        "start": start,
        "end": end,
        "landing": str(registry.landing),
        "lake": str(registry.lake),
        "dagster_home": str(dagster_home),
        "incidents_truth": str(simulation.truth_path),
        "runs": [dataclasses.asdict(o) for o in outcomes],
        "incident_runs": [dataclasses.asdict(o) for o in incident_runs],
        "ingest": summary,
        "incidents": incidents,
        "scorecard": scorecard.as_dict(),
        "comparisons": comparisons,
        "reports_index": str(index),
    }
    text = "\n".join(
        [
            f"closedloop demo: {args.days} simulated days ({start}..{end}), seed {args.seed}",
            _summary_text(summary),
            f"Landing zone:  {registry.landing}",
            f"Lake:          {registry.lake}",
            f"Injected incidents ({simulation.truth_path}):",
            *_truth_lines(truth),
            "Checks that failed (compare with the injected incidents above):",
            *_failed_check_lines(outcomes),
            "Incidents opened (SLO breached -> closedloop_incidents sensor -> incident job):",
            *incident_lines(incidents, scorecard.matches),
            "Scorecard against the injected incidents:",
            *_scorecard_lines(scorecard),
            f"What changed when fraud shipped v12 ({this_command()} compare --model fraud --baseline v11 "
            "--candidate v12):",
            *(
                line
                for c in comparisons
                for line in (f"  {c['headline']}", f"    {c['summary']}", f"    {c['report'] or ''}")
            ),
            f"Pending actions: {this_command()} actions --state pending; approve one with {this_command()} approve "
            "ACTION_ID",
            f"Runs are in the Dagster instance at {dagster_home}; open the UI with `make ui` "
            "(http://127.0.0.1:3000, Assets > fraud / ticket_triage).",
            f'Ad-hoc SQL: {this_command()} sql "select * from fraud_quarantine limit 5"',
            f"Daily reports of the days incidents opened and of {end} (any other day: {this_command()} report "
            "--model M --date D); open the calendar:",
            f"  {index}",
        ]
        + [f"FAILED {line}" for line in failures]
    )
    emit(payload, args.json, text)
    if failures:
        print(f"closedloop demo: {failures[0]}", file=sys.stderr)
        return 1
    return 0


def _demo_comparisons(lake, registry: Registry) -> list[dict]:
    """fraud's v12 against v11 on its canary, and paired on its shadow week when it had one."""
    from closedloop.compare.comparison import run_comparison
    from closedloop.compare.request import CompareError, plan_comparison

    try:
        canary = plan_comparison(lake, registry, "fraud", "v11", "v12")
    except CompareError as exc:  # a short demo ends before v12 ships
        return [{"headline": "no comparison", "summary": str(exc), "report": None}]
    requests = [canary]
    if canary.left_out is not None:
        shadow = canary.left_out
        requests.append(plan_comparison(lake, registry, "fraud", "v11", "v12", start=shadow.start, end=shadow.end))
    out = []
    for request in requests:
        comparison, report = run_comparison(lake, registry, request)
        out.append({"headline": request.describe(), "summary": comparison.verdict["summary"], "report": str(report)})
    return out


def _truth_lines(truth: dict) -> list[str]:
    return [
        f"  {i['model']:<14} {i['start']}..{i['end']}  {i['id']:<30} should trip {i['signal']}"
        + (f" on {i['column']}" if i.get("column") else "")
        + (" (gradual)" if i.get("gradual") else "")
        for i in truth["incidents"]
    ]


def _reports(registry: Registry, models: list[str], day: dt.date) -> list:
    """What the daily report schedule does an hour after the pipeline: each model's report of ``day``."""
    import dagster as dg

    from orchestration.runner import materialize_reports

    return materialize_reports(registry, models, day, dg.DagsterInstance.get())


def _incident_day_reports(lake, registry: Registry, quiet: bool):
    """The reports of the days an incident opened (the pages a reader opens first), a process per core; the index."""
    from closedloop.core.periods import period_start
    from closedloop.reports.publish import write_daily_report, write_index

    incidents = incident_summaries(lake, list(registry.models))
    days = sorted({(i["model"], period_start(i["opened"]).date()) for i in incidents})
    now = dt.datetime.now(dt.UTC)
    workers = max(1, min(len(days), len(os.sched_getaffinity(0))))
    with (
        progress(len(days), "writing the incident days' reports", quiet, unit="report") as bar,
        ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool,
    ):
        written = [pool.submit(write_daily_report, lake, registry.model(name), day, now) for name, day in days]
        for report in as_completed(written):
            report.result()
            bar.update()
    return write_index(lake, registry)


def _handle_incidents(registry: Registry) -> list:
    """What the incident sensor would do under the daemon, done now: open, act on and close incidents."""
    import dagster as dg

    from orchestration.runner import handle_incidents

    return handle_incidents(registry, dg.DagsterInstance.get())


def _scorecard_lines(scorecard) -> list[str]:
    from closedloop.control.scorecard import BASE

    lines = []
    for d in scorecard.detections:
        if d.caught_by is None:
            verdict = "MISSED"
        elif d.on_time is None:
            verdict = f"caught {d.delay_days} days after it began (gradual: no day it must be seen on)"
        else:
            allowed = f"within the label delay of {d.allowance_days} days" if d.allowance_days else "on its first day"
            verdict = f"caught after {d.delay_days} days: {'on time' if d.on_time else 'LATE'} ({allowed})"
        by = f" by {d.slo}[{d.subject}]" if d.subject else f" by {d.slo}" if d.slo else ""
        lines.append(f"  {d.truth_id:<30} {verdict}{by}")
    card = scorecard.as_dict()
    base = scorecard.false_alerts_of(BASE)
    clean_days = ", ".join(f"{model} {days}" for model, days in scorecard.clean_days.items())
    lines.append(
        f"  detection recall {card['caught']}/{card['injected']}, on time {card['on_time']}/{card['judged_on_time']}"
    )
    lines.append(
        f"  false alerts on clean days ({clean_days}): {len(base)}" + (f" ({', '.join(base)})" if base else "")
    )
    for canary, days in scorecard.canaries.items():
        found = scorecard.false_alerts_of(canary)
        lines.append(
            f"  false alerts from the clean canary {canary} ({days} days): {len(found)}"
            + (f" ({', '.join(found)})" if found else "")
        )
    return lines


def _day_ranges(days: tuple[str, ...]) -> str:
    """``2026-09-13..2026-09-16, 2026-09-21`` from a list of days."""
    dates = sorted(dt.date.fromisoformat(d) for d in days)
    ranges: list[list[dt.date]] = []
    for date in dates:
        if ranges and date - ranges[-1][1] == dt.timedelta(days=1):
            ranges[-1][1] = date
        else:
            ranges.append([date, date])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in ranges)


def _failed_check_lines(outcomes: list) -> list[str]:
    lines = []
    for outcome in outcomes:
        for failed in outcome.failed_checks:
            when = _day_ranges(failed.days) if failed.days else f"first {failed.first_failure}"
            lines.append(f"  {failed.asset:<30} {failed.check:<40} {failed.severity:<6} {when}")
    return lines or ["  none"]


def _summary_text(summary: dict) -> str:
    lines = [f"{'model':<15}{'table':<13}{'landed':>11}{'accepted':>11}{'quarantined':>13}{'duplicates':>12}"]
    for model, tables in summary.items():
        for table, counts in tables.items():
            lines.append(
                f"{model:<15}{table:<13}{counts['landed']:>11,}{counts['accepted']:>11,}"
                f"{counts['quarantined']:>13,}{counts['duplicates']:>12,}"
            )
            for reason, count in counts["quarantine_reasons"].items():
                lines.append(f"{'':<28}quarantined: {reason}: {count:,}")
            if counts["failed_day"]:
                lines.append(
                    f"{'':<28}ingest failed on {counts['failed_day']} (see the failed run); "
                    f"{counts['days_ingested']} day(s) before it ingested, {counts['days_missing']} not"
                )
            elif counts["days_missing"]:
                lines.append(f"{'':<28}{counts['days_missing']} day(s) not ingested (the step did not run)")
    return "\n".join(lines)
