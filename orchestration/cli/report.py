"""``closedloop report``: write (or rebuild) a model's daily report from the lake and print where it is."""

import argparse
import datetime as dt
import webbrowser

from closedloop.reports.index import evaluated_days
from closedloop.reports.publish import write_daily_report, write_index
from orchestration.cli.common import UserError, emit, lake_of, load, progress


def cmd_report(args: argparse.Namespace) -> int:
    registry = load(args)
    lake = lake_of(registry)
    models = [registry.model(args.model)] if args.model else list(registry.models.values())
    days = {}
    for model in models:
        span = evaluated_days(lake, model)
        if args.date is None and span is None:
            raise UserError(
                f"{model.name} has no judged day yet: run the pipeline first (closedloop run --model {model.name} "
                "--start DAY --end DAY), or give --date"
            )
        days[model.name] = args.date or span[1]
    now = dt.datetime.now(dt.UTC)
    written = []
    with progress(len(models), "writing reports", args.json, unit="report") as bar:
        for model in models:
            report, path = write_daily_report(lake, model, days[model.name], now)
            health = report.health
            written.append(
                {
                    "model": model.name,
                    "day": health.day,
                    "state": health.state,
                    "open_incidents": len(health.open_incidents),
                    "actions_waiting_for_approval": len(health.pending_actions),
                    "report": str(path),
                }
            )
            bar.update()
    index = write_index(lake, registry)
    lines = [
        f"{w['model']} on {w['day']}: {w['state']}, {w['open_incidents']} open incident(s), "
        f"{w['actions_waiting_for_approval']} action(s) waiting for approval\n  {w['report']}"
        for w in written
    ]
    emit({"reports": written, "index": str(index)}, args.json, "\n".join([*lines, f"Every day: {index}"]))
    if args.open:
        webbrowser.open(lake.report_path(models[0].name, days[models[0].name]).as_uri())
    return 0
