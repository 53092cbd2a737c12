"""Commands that read the lake: ``status``, ``metrics``, ``quarantine`` and ``sql``.

They only format what the domain answers.
"""

import argparse
import datetime as dt
import json

from closedloop.control.serving import read_serving
from closedloop.control.status import current_silences, incident_summaries, slo_status
from closedloop.core.names import checked_day
from closedloop.evaluation.rolling_eval import ESTIMATED, metrics_document
from orchestration.cli.actions import serving_line
from orchestration.cli.common import UserError, check_within_partitions, emit, incident_lines, lake_of, load


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb

    from closedloop.core.sql_views import query

    registry = load(args)
    try:
        frame = query(lake_of(registry), registry, args.query)
    except duckdb.Error as exc:
        raise UserError(
            f"query failed: {str(exc).splitlines()[0]} (closedloop sql is read-only and reads the lake's views only, "
            "<model>_<table>)"
        ) from None
    if args.json:
        print(
            json.dumps(
                {"columns": list(frame.columns), "rows": json.loads(frame.to_json(orient="values", date_format="iso"))}
            )
        )
    else:
        print(frame.to_string(index=False, max_rows=args.max_rows))
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    from closedloop.inputs.quarantine import quarantine_counts

    registry = load(args)
    registry.model(args.model)
    lake = lake_of(registry)
    if args.date:
        check_within_partitions(registry, args.model, args.date, args.date)
        if not lake.partition_path(args.model, "predictions", args.date).exists():
            raise UserError(
                f"{args.model} has no ingested predictions for {args.date} in {lake.root}: nothing was landed or "
                f"ingested that day (closedloop run --start {args.date} --end {args.date} --model {args.model})"
            )
    counts = quarantine_counts(lake, args.model, args.date)
    lines = [f"{'date':<12}{'table':<13}{'rows':>9}  reason"]
    lines += [f"{c['date']:<12}{c['table']:<13}{c['rows']:>9,}  {c['reason']}" for c in counts]
    if not counts:
        lines = [f"nothing quarantined for {args.model}" + (f" on {args.date}" if args.date else "")]
    emit({"model": args.model, "date": args.date, "counts": counts}, args.json, "\n".join(lines))
    return 0


METRICS_TEXT = (
    "n",
    "n_labeled",
    "coverage",
    "roc_auc",
    "pr_auc",
    "precision",
    "recall",
    "f1",
    "brier",
    "log_loss",
    "ece",
    "decision_rate",
)


def cmd_metrics(args: argparse.Namespace) -> int:
    registry = load(args)
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
        document = metrics_document(lake_of(registry), model, day, window, args.segment)
    except ValueError as exc:
        raise UserError(str(exc)) from None
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
    emit(document, args.json, "\n".join(lines))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    registry = load(args)
    models = [registry.model(args.model).name] if args.model else list(registry.models)
    lake = lake_of(registry)
    slos = [row for name in models for row in slo_status(lake, registry.model(name))]
    incidents = incident_summaries(lake, models)
    width = max([28, *(len(s["slo"]) + 2 for s in slos)])
    lines = [f"{'model':<15}{'slo':<{width}}{'state':<15}{'period':<27}value"]
    value = lambda v: "" if v is None else format(v, ".4g")  # noqa: E731
    for s in slos:
        lines.append(f"{s['model']:<15}{s['slo']:<{width}}{s['state']:<15}{s['period'] or '':<27}{value(s['value'])}")
        lines += [
            f"{'':<17}{t['subject']:<{width - 2}}{t['state']:<15}{t['period']:<27}{value(t['value'])}"
            + (f"  {t['detail']}" if t["detail"] and t["state"] != "ok" else "")
            for t in s["subjects"]
        ]
    if not incidents and all(s["period"] is None for s in slos):
        lines.append(
            f"no SLO has been judged yet in the lake {lake.root} (the lake of {registry.path}: its lake: key, or "
            "CLOSEDLOOP_LAKE); closedloop run --start DAY --end DAY judges the days landed"
        )
    open_incidents = [i for i in incidents if i["state"] == "open"]
    lines.append(f"open incidents: {len(open_incidents)}")
    lines += incident_lines(open_incidents) if open_incidents else []
    untold = [i for i in incidents if i["undelivered"]]
    lines += [f"owners not told yet: {len(untold)}"] if untold else []
    lines += [
        f"  {i['incident_id']}: the {i['undelivered']} message failed {i['delivery_failures']} time(s), last "
        f"{i['notification'].rpartition('; ')[2]}; the closedloop_incidents sensor sends it again"
        for i in untold
    ]
    silences = current_silences(lake, models, dt.datetime.now(dt.UTC))
    lines += [f"silences: {len(silences)}"] if silences else []
    lines += [
        f"  {s['silence_id']}  {s['model']:<14} {s['slo'] or 'every SLO':<28} {s['starts']:%Y-%m-%d %H:%M} .. "
        f"{s['until']:%Y-%m-%d %H:%M} UTC  by {s['who']}: {s['why']}"
        for s in silences
    ]
    serving = {name: read_serving(lake, registry.model(name)) for name in models}
    lines += ["serving:"] + [f"  {serving_line(name, state)}" for name, state in serving.items()]
    payload = {"slos": slos, "incidents": incidents, "silences": silences, "serving": serving}
    emit(payload, args.json, "\n".join(lines))
    return 0
