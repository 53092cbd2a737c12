"""The ``closedloop`` command line.

Every command prints a readable summary, or one JSON object with ``--json``. Errors a user can
cause (a bad registry, a bad date, a landing file that breaks the contract) end in one line
that says what was wrong and what to do, and a non-zero exit, never a traceback.
"""

import argparse
import dataclasses
import datetime as dt
import getpass
import json
import sys
from pathlib import Path

from closedloop.core.environment import prepare_environment
from closedloop.core.lake import Lake, LakeError
from closedloop.core.names import InvalidNameError, checked_day
from closedloop.registry import registry_from_environment
from closedloop.core.specs import Registry, RegistryError
from closedloop.inputs.summary import ingest_summary

DEMO_DAYS = 60
DEMO_SEED = 7


class UserError(Exception):
    """Something the user can fix; printed as one line."""


def _date(value: str) -> dt.date:
    try:
        return checked_day(value)
    except InvalidNameError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _registry(args: argparse.Namespace) -> Registry:
    """The registry, with every SLO's metric source and business SQL checked (load_registry does)."""
    return registry_from_environment(args.config)


def _lake(registry: Registry) -> Lake:
    return Lake(root=registry.lake, landing=registry.landing)


def _emit(payload: dict, as_json: bool, text: str) -> None:
    print(json.dumps(payload, default=str) if as_json else text)


def _progress(total: int, description: str, quiet: bool, unit: str = "step"):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit=unit, disable=quiet, file=sys.stderr, leave=False)


def cmd_simulate(args: argparse.Namespace) -> int:
    from closedloop.simulator import simulate

    start = {"start": args.start} if args.start else {}
    with _progress(args.days, "simulating", args.json, unit="day") as bar:
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
    _emit(payload, args.json, text + f"\n  incidents: {result.truth_path}")
    return 0


def _materialize(registry: Registry, models: list[str], start: dt.date, end: dt.date, quiet: bool) -> list:
    import dagster as dg

    from orchestration.runner import count_steps, materialize_range

    for name in models:
        model = registry.model(name)
        if start < model.start_date:
            raise UserError(
                f"{start} is before {name}'s first partition {model.start_date} (models.{name}.start_date in {registry.path})"
            )
    if end < start:
        raise UserError(f"--end {end} is before --start {start}")
    instance = dg.DagsterInstance.get()
    with _progress(count_steps(registry, models), f"materializing {start}..{end}", quiet) as bar:
        outcomes = materialize_range(
            registry, models, start, end, instance, on_step=lambda model, step: bar.set_postfix_str(f"{model}: {step}") or bar.update()
        )
    return outcomes


def _failures(outcomes: list) -> list[str]:
    return [f"{o.model}: {o.failure} (run {o.run_id})" for o in outcomes if not o.success]


def cmd_run(args: argparse.Namespace) -> int:
    prepare_environment()
    registry = _registry(args)
    models = [args.model] if args.model else list(registry.models)
    for name in models:
        registry.model(name)
    outcomes = _materialize(registry, models, args.start, args.end, args.json)
    incident_runs = _handle_incidents(registry)
    lake = _lake(registry)
    summary = ingest_summary(lake, models, args.start, args.end)
    failures = _failures(outcomes + incident_runs)
    incidents = _incidents(lake, models)
    payload = {
        "start": args.start,
        "end": args.end,
        "runs": [dataclasses.asdict(o) for o in outcomes],
        "incident_runs": [dataclasses.asdict(o) for o in incident_runs],
        "ingest": summary,
        "incidents": incidents,
    }
    text = "\n".join(
        [_summary_text(summary), "Checks that failed:", *_failed_check_lines(outcomes), "Incidents:", *_incident_lines(incidents)]
    )
    _emit(payload, args.json, text + "".join(f"\nFAILED {line}" for line in failures))
    if failures:
        print(f"closedloop run: {failures[0]}", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from closedloop.simulator import DEFAULT_START, simulate

    dagster_home = prepare_environment()
    registry = _registry(args)
    missing = {"fraud", "ticket_triage"} - set(registry.models)
    if missing:
        raise UserError(f"the demo needs models {sorted(missing)} in {registry.path}; run it with the project's config/models.yaml")
    start, end = DEFAULT_START, DEFAULT_START + dt.timedelta(days=args.days - 1)
    with _progress(args.days, "simulating production", args.json, unit="day") as bar:
        simulation = simulate(registry.landing, days=args.days, seed=args.seed, start=start, on_day=lambda _: bar.update())
    models = list(registry.models)
    outcomes = _materialize(registry, models, start, end, args.json)
    incident_runs = _handle_incidents(registry)
    lake = _lake(registry)
    from closedloop.core.sql_views import refresh_catalog
    from closedloop.control.scorecard import score

    refresh_catalog(lake, registry)
    summary = ingest_summary(lake, models, start, end)
    failures = _failures(outcomes + incident_runs)
    incidents = _incidents(lake, models)
    truth = json.loads(simulation.truth_path.read_text())
    maturity = {name: registry.model(name).labels.maturity_days for name in models}
    scorecard = score(truth, {m: [i for i in incidents if i["model"] == m] for m in models}, maturity)
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
            *_incident_lines(incidents, scorecard.matches),
            "Scorecard against the injected incidents:",
            *_scorecard_lines(scorecard),
            f"Pending actions: {_this_command()} actions --state pending; approve one with {_this_command()} approve ACTION_ID",
            f"Runs are in the Dagster instance at {dagster_home}; open the UI with `make ui` "
            "(http://127.0.0.1:3000, Assets > fraud / ticket_triage).",
            f'Ad-hoc SQL: {_this_command()} sql "select * from fraud_quarantine limit 5"',
        ]
        + [f"FAILED {line}" for line in failures]
    )
    _emit(payload, args.json, text)
    if failures:
        print(f"closedloop demo: {failures[0]}", file=sys.stderr)
        return 1
    return 0


def _this_command() -> str:
    """How the user can call this command again (``.venv/bin/closedloop`` inside the project)."""
    invoked = Path(sys.argv[0])
    try:
        return str(invoked.resolve().relative_to(Path.cwd()))
    except ValueError:
        return invoked.name


def _truth_lines(truth: dict) -> list[str]:
    return [
        f"  {i['model']:<14} {i['start']}..{i['end']}  {i['id']:<30} should trip {i['signal']}"
        + (f" on {i['column']}" if i.get("column") else "")
        + (" (gradual)" if i.get("gradual") else "")
        for i in truth["incidents"]
    ]


def _handle_incidents(registry: Registry) -> list:
    """What the incident sensor would do under the daemon, done now: open, act on and close incidents."""
    import dagster as dg

    from orchestration.runner import handle_incidents

    return handle_incidents(registry, dg.DagsterInstance.get())


INCIDENT_FIELDS = (
    "incident_id", "model", "slo", "metric", "version", "value", "opened", "closed", "severity", "action",
    "action_mode", "action_id", "action_result", "notification", "state",
)  # fmt: skip


def _incidents(lake: Lake, models: list[str]) -> list[dict]:
    from closedloop.control.incidents import read_incidents

    return [{key: incident[key] for key in INCIDENT_FIELDS} for name in models for incident in read_incidents(lake, name)]


def _incident_lines(incidents: list[dict], matches: dict | None = None) -> list[str]:
    lines = []
    for i in incidents:
        scope = f" {i['version']}" if i["version"] not in (None, "all") else ""
        closed = f"closed {i['closed']}" if i["closed"] else "open"
        line = f"  {i['model']:<14} {i['opened']:<26} {i['slo']:<28} {i['metric']}{scope} = {i['value']:.4g}; {closed}"
        action = i["action"] if i["action"] == "notify" else f"{i['action']} ({i['action_mode']})"
        line += f"\n{'':<18}{action}: {i['action_result'] or 'not carried out yet'}"
        if matches is not None:
            line += f"; {'matches ' + matches[i['incident_id']] if matches.get(i['incident_id']) else 'FALSE ALERT (no injected incident)'}"
        lines.append(line)
    return lines or ["  none"]


def _scorecard_lines(scorecard) -> list[str]:
    lines = []
    for d in scorecard.detections:
        if d.caught_by is None:
            verdict = "MISSED"
        elif d.on_time is None:
            verdict = f"caught {d.delay_days} days after it began (gradual: no day it must be seen on)"
        else:
            allowed = f"within the label delay of {d.allowance_days} days" if d.allowance_days else "on its first day"
            verdict = f"caught after {d.delay_days} days: {'on time' if d.on_time else 'LATE'} ({allowed})"
        lines.append(f"  {d.truth_id:<30} {verdict}" + (f" by {d.slo}" if d.slo else ""))
    card = scorecard.as_dict()
    lines.append(
        f"  detection recall {card['caught']}/{card['injected']}, on time {card['on_time']}/{card['judged_on_time']}, "
        f"false alerts on clean days: {len(card['false_alerts'])}" + (f" ({', '.join(card['false_alerts'])})" if card["false_alerts"] else "")
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
            if counts["days_missing"]:
                lines.append(f"{'':<28}{counts['days_missing']} day(s) not ingested (see the failed run)")
    return "\n".join(lines)


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb

    from closedloop.core.sql_views import query, refresh_catalog

    registry = _registry(args)
    lake = _lake(registry)
    refresh_catalog(lake, registry)
    try:
        frame = query(lake, args.query)
    except duckdb.Error as exc:
        raise UserError(f"query failed: {str(exc).splitlines()[0]}") from None
    if args.json:
        print(json.dumps({"columns": list(frame.columns), "rows": json.loads(frame.to_json(orient="values", date_format="iso"))}))
    else:
        print(frame.to_string(index=False, max_rows=args.max_rows))
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    from closedloop.inputs.quarantine import quarantine_counts

    registry = _registry(args)
    registry.model(args.model)
    counts = quarantine_counts(_lake(registry), args.model, args.date)
    lines = [f"{'date':<12}{'table':<13}{'rows':>9}  reason"]
    lines += [f"{c['date']:<12}{c['table']:<13}{c['rows']:>9,}  {c['reason']}" for c in counts]
    if not counts:
        lines = [f"nothing quarantined for {args.model}" + (f" on {args.date}" if args.date else "")]
    _emit({"model": args.model, "date": args.date, "counts": counts}, args.json, "\n".join(lines))
    return 0


METRICS_TEXT = (
    "n", "n_labeled", "coverage", "roc_auc", "pr_auc", "precision", "recall", "f1", "brier", "log_loss", "ece", "decision_rate",
)


def cmd_metrics(args: argparse.Namespace) -> int:
    from closedloop.evaluation.daily import ESTIMATED, read_rolling_eval

    registry = _registry(args)
    model = registry.model(args.model)
    day = checked_day(args.date)
    windows = list(model.evaluation.windows_days)
    window = max(windows) if args.window is None else args.window
    if window not in windows:
        raise UserError(
            f"--window {window}: {model.name} is evaluated over {windows}-day windows "
            f"(models.{model.name}.evaluation.windows_days in {registry.path})"
        )
    if args.segment is not None and args.segment not in model.segments:
        raise UserError(f"--segment {args.segment}: {model.name}'s segments are {list(model.segments)}")
    try:
        document = read_rolling_eval(_lake(registry), model, day).document(window)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    for block in [document["all_versions"], *document["versions"].values()]:
        segments = block.pop("segments", {})
        if args.segment is not None:
            block["segments"] = {args.segment: segments.get(args.segment, {})}
    blocks = {**document["versions"], "all versions": document["all_versions"]}
    rows = {name: [block.get(name) for block in blocks.values()] for name in METRICS_TEXT}
    for name in ("n_labeled", "roc_auc", "ece"):
        rows[f"immature {name}"] = [block.get("immature", {}).get(name) for block in blocks.values()]
    rows["estimated roc_auc"] = [block.get(ESTIMATED, {}).get("roc_auc") for block in blocks.values()]
    lines = [
        f"{model.name}, {window} days {document['window_start']}..{document['window_end']} "
        f"(labels matured through {document['mature_through']})",
        f"{'':<20}" + "".join(f"{version:>14}" for version in blocks),
    ]
    cell = lambda v: f"{'':>14}" if v is None else f"{v:>14,}" if isinstance(v, int) else f"{v:>14.4g}"  # noqa: E731
    lines += [f"{name:<20}" + "".join(cell(v) for v in values) for name, values in rows.items()]
    _emit(document, args.json, "\n".join(lines))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from closedloop.control.slo import read_evaluations
    from closedloop.core.periods import period_start

    registry = _registry(args)
    models = [registry.model(args.model).name] if args.model else list(registry.models)
    lake = _lake(registry)
    slos = []
    for name in models:
        latest: dict[str, dict] = {}
        for row in sorted(read_evaluations(lake, name).to_pylist(), key=lambda r: period_start(r["period"])):
            if row["value"] is not None:  # a period without data changes no state
                latest[row["slo"]] = row
        for slo in registry.model(name).slos:
            row = latest.get(slo.name)
            slos.append(
                {
                    "model": name,
                    "slo": slo.name,
                    "metric": slo.metric,
                    "severity": slo.severity,
                    "state": row["state"] if row else "no data",
                    "period": row["period"] if row else None,
                    "version": row["version"] if row else None,
                    "value": row["value"] if row else None,
                    "consecutive_breaches": row["consecutive_breaches"] if row else 0,
                }
            )
    incidents = _incidents(lake, models)
    lines = [f"{'model':<15}{'slo':<28}{'state':<15}{'period':<27}value"]
    lines += [
        f"{s['model']:<15}{s['slo']:<28}{s['state']:<15}{s['period'] or '':<27}{'' if s['value'] is None else format(s['value'], '.4g')}"
        for s in slos
    ]
    open_incidents = [i for i in incidents if i["state"] == "open"]
    lines.append(f"open incidents: {len(open_incidents)}")
    lines += _incident_lines(open_incidents) if open_incidents else []
    _emit({"slos": slos, "incidents": incidents}, args.json, "\n".join(lines))
    return 0


def _who(args: argparse.Namespace) -> str:
    return args.who or f"cli:{getpass.getuser()}"


def _action_line(row: dict) -> str:
    return (
        f"{row['action_id']}  {row['model']:<14} {row['type']:<12} {row['mode']:<8} {row['state']:<9} "
        f"{row['requested_at']:%Y-%m-%d %H:%M}  {row['why']}"
    )


def cmd_actions(args: argparse.Namespace) -> int:
    from closedloop.control.serving import read_actions

    registry = _registry(args)
    models = [registry.model(args.model).name] if args.model else list(registry.models)
    rows = [row for name in models for row in read_actions(_lake(registry), name, args.state)]
    lines = [_action_line(row) for row in rows] or [f"no {args.state or ''} actions".replace("  ", " ")]
    _emit({"actions": rows}, args.json, "\n".join(lines))
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    from closedloop.control.serving import ControlError, approve, read_actions, reject

    registry = _registry(args)
    lake = _lake(registry)
    models = [registry.model(args.model).name] if args.model else list(registry.models)
    owner = next((name for name in models for row in read_actions(lake, name) if row["action_id"] == args.action_id), None)
    if owner is None:
        raise UserError(f"no action {args.action_id!r} for {', '.join(models)}; list them with `closedloop actions`")
    decide = approve if args.command == "approve" else reject
    try:
        row = decide(lake, registry.model(owner), args.action_id, who=_who(args), now=dt.datetime.now(dt.timezone.utc))
    except ControlError as exc:
        raise UserError(str(exc)) from None
    text = f"{row['state']}: {_action_line(row)}"
    if row["state"] == "applied":
        text += f"\nserving file {lake.serving_path(owner)}: {row['after']}"
    _emit(row, args.json, text)
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from closedloop.control.serving import ControlError, request_action
    from closedloop.core.specs import RunbookAction

    registry = _registry(args)
    model = registry.model(args.model)
    action = RunbookAction(type="rollback", mode="auto", params={"to": args.to} if args.to else {})
    try:
        row = request_action(
            _lake(registry), model, action, why=args.why, who=_who(args), now=dt.datetime.now(dt.timezone.utc)
        )
    except ControlError as exc:
        raise UserError(str(exc)) from None
    before, after = json.loads(row["before"]), json.loads(row["after"])
    text = f"{model.name}: {before['active_version']} -> {after['active_version']} (audit row {row['action_id']})"
    _emit(row, args.json, text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="closedloop", description="Keep production ML models sane.")
    parser.add_argument("--config", help="registry file (default: CLOSEDLOOP_CONFIG, else config/models.yaml)")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("--json", action="store_true", help="print one JSON object to stdout")
        sub.set_defaults(handler=handler)
        return sub

    demo = command("demo", cmd_demo, "simulate production and run the whole pipeline over it")
    demo.add_argument("--days", type=int, default=DEMO_DAYS)
    demo.add_argument("--seed", type=int, default=DEMO_SEED)

    sim = command("simulate", cmd_simulate, "write simulated prediction and label logs to a landing folder")
    sim.add_argument("--out", required=True, help="landing folder to write")
    sim.add_argument("--days", type=int, default=DEMO_DAYS)
    sim.add_argument("--seed", type=int, default=DEMO_SEED)
    sim.add_argument("--start", type=_date, default=None, help="first simulated day (default 2026-09-01)")

    run = command("run", cmd_run, "materialize every asset of a date range in-process, one run per model")
    run.add_argument("--start", type=_date, required=True)
    run.add_argument("--end", type=_date, required=True)
    run.add_argument("--model", help="only this model")

    quarantine = command("quarantine", cmd_quarantine, "count quarantined rows by day, table and reason")
    quarantine.add_argument("--model", required=True)
    quarantine.add_argument("--date", type=_date, help="only this day")

    metrics = command("metrics", cmd_metrics, "a rolling window's quality, calibration and decision rates per model version")
    metrics.add_argument("--model", required=True)
    metrics.add_argument("--date", required=True, help="the window's last day (YYYY-MM-DD)")
    metrics.add_argument("--window", type=int, help="window length in days, one of the registry's (default: the longest)")
    metrics.add_argument("--segment", help="also break each version down by this segment column")

    status = command("status", cmd_status, "each SLO's latest state and the incidents")
    status.add_argument("--model", help="only this model")

    actions = command("actions", cmd_actions, "the runbook actions' audit log (pending ones wait for approval)")
    actions.add_argument("--model", help="only this model")
    actions.add_argument("--state", choices=["pending", "applied", "rejected"], help="only actions in this state")

    for name, verb in (("approve", "apply a proposed runbook action to the serving file"), ("reject", "reject a proposed runbook action")):
        decision = command(name, cmd_decide, verb)
        decision.add_argument("action_id", help="the action's id, e.g. act_1a2b3c4d5e (see `closedloop actions`)")
        decision.add_argument("--model", help="the action's model (default: look in every model)")
        decision.add_argument("--who", help="who decides, for the audit log (default: cli:<your user name>)")

    rollback = command("rollback", cmd_rollback, "roll a model back to its previous version (or --to VERSION) now")
    rollback.add_argument("--model", required=True)
    rollback.add_argument("--to", help="the version to serve (default: the one released before the active one)")
    rollback.add_argument("--why", default="manual rollback from the command line", help="the reason, for the audit log")
    rollback.add_argument("--who", help="who rolls back, for the audit log (default: cli:<your user name>)")

    sql = command("sql", cmd_sql, "run SQL against the lake's DuckDB catalog (views <model>_<table>)")
    sql.add_argument("query")
    sql.add_argument("--max-rows", type=int, default=50)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "days", 1) < 1:
        print("closedloop: --days must be at least 1", file=sys.stderr)
        return 2
    try:
        return args.handler(args)
    except (UserError, RegistryError, LakeError, InvalidNameError) as exc:
        print(f"closedloop {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("closedloop: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
