"""The ``closedloop`` command line.

Every command prints a readable summary, or one JSON object with ``--json``. Errors a user can
cause (a bad registry, a bad date, a landing file that breaks the contract) end in one line
that says what was wrong and what to do, and a non-zero exit, never a traceback. Commands are
grouped by family: ``pipeline`` (simulate, run, demo), ``inspect`` (status, metrics, quarantine,
sql), ``compare``, ``report``, ``actions`` (serving, actions, approve, reject, rollback, fallback) and ``alerts``
(alerts test, ack, silence). A command's module is imported only when that command runs, so
``--help`` does not pay for pandas or scipy.
"""

import argparse
import importlib
import sys
from collections.abc import Callable

from closedloop.core.lake import LakeError
from closedloop.core.names import InvalidNameError
from closedloop.core.specs import RegistryError
from orchestration.cli.common import DEMO_DAYS, DEMO_SEED, UserError, parse_date, parse_time


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="closedloop", description="Keep production ML models sane.")
    parser.add_argument("--config", help="registry file (default: CLOSEDLOOP_CONFIG, else config/models.yaml)")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: str, help: str) -> argparse.ArgumentParser:
        """``handler`` is "module:function" under orchestration.cli, imported only when the command runs."""
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("--json", action="store_true", help="print one JSON object to stdout")
        sub.set_defaults(handler=handler)
        return sub

    demo = command("demo", "pipeline:cmd_demo", "simulate production and run the whole pipeline over it")
    demo.add_argument("--days", type=int, default=DEMO_DAYS)
    demo.add_argument("--seed", type=int, default=DEMO_SEED)

    sim = command("simulate", "pipeline:cmd_simulate", "write simulated prediction and label logs to a landing folder")
    sim.add_argument("--out", required=True, help="landing folder to write")
    sim.add_argument("--days", type=int, default=DEMO_DAYS)
    sim.add_argument("--seed", type=int, default=DEMO_SEED)
    sim.add_argument("--start", type=parse_date, default=None, help="first simulated day (default 2026-09-01)")

    run = command("run", "pipeline:cmd_run", "materialize every asset of a date range in-process, one run per model")
    run.add_argument("--start", type=parse_date, required=True)
    run.add_argument("--end", type=parse_date, required=True)
    run.add_argument("--model", help="only this model")

    quarantine = command("quarantine", "inspect:cmd_quarantine", "count quarantined rows by day, table and reason")
    quarantine.add_argument("--model", required=True)
    quarantine.add_argument("--date", type=parse_date, help="only this day")

    metrics = command(
        "metrics", "inspect:cmd_metrics", "a rolling window's quality, calibration and decision rates per model version"
    )
    metrics.add_argument("--model", required=True)
    metrics.add_argument("--date", required=True, help="the window's last day (YYYY-MM-DD)")
    metrics.add_argument(
        "--window", type=int, help="window length in days, one of the registry's (default: the longest)"
    )
    metrics.add_argument("--segment", help="also break each version down by this segment column")

    status = command("status", "inspect:cmd_status", "each SLO's latest state and the incidents")
    status.add_argument("--model", help="only this model")

    actions = command(
        "actions", "actions:cmd_actions", "the runbook actions' audit log (pending ones wait for approval)"
    )
    actions.add_argument("--model", help="only this model")
    actions.add_argument("--state", choices=["pending", "applied", "rejected"], help="only actions in this state")

    for name, verb in (
        ("approve", "apply a proposed runbook action to the serving file"),
        ("reject", "reject a proposed runbook action"),
    ):
        decision = command(name, "actions:cmd_decide", verb)
        decision.add_argument("action_id", help="the action's id, e.g. act_1a2b3c4d5e (see `closedloop actions`)")
        decision.add_argument("--model", help="the action's model (default: look in every model)")
        decision.add_argument("--who", help="who decides, for the audit log (default: cli:<your user name>)")

    rollback = command(
        "rollback", "actions:cmd_rollback", "roll a model back to its previous version (or --to VERSION) now"
    )
    rollback.add_argument("--model", required=True)
    rollback.add_argument("--to", help="the version to serve (default: the one released before the active one)")
    rollback.add_argument(
        "--why", default="manual rollback from the command line", help="the reason, for the audit log"
    )
    rollback.add_argument("--who", help="who rolls back, for the audit log (default: cli:<your user name>)")

    fallback = command(
        "fallback", "actions:cmd_fallback", "turn a model's fallback (the kill switch) on or off now, audited"
    )
    fallback.add_argument("state", choices=["on", "off"])
    fallback.add_argument("--model", required=True)
    fallback.add_argument("--why", default="manual switch from the command line", help="the reason, for the audit log")
    fallback.add_argument("--who", help="who switches, for the audit log (default: cli:<your user name>)")

    serving = command("serving", "actions:cmd_serving", "what each model serves now: version, weights, fallback")
    serving.add_argument("--model", help="only this model")

    alerts = command(
        "alerts", "alerts:cmd_alerts", "post a test message through each alert route and say what answered"
    )
    alerts.add_argument("what", choices=["test"], help="test: send the test messages")
    alerts.add_argument("--model", help="only the routes this model's incidents go through")

    ack = command("ack", "alerts:cmd_ack", "acknowledge an open incident: its owner is not reminded of it again")
    ack.add_argument("incident_id", help="the incident's id, e.g. fraud/score_distribution_stable/2026-10-08")
    ack.add_argument("--who", help="who is on it, for the audit log (default: cli:<your user name>)")

    silence = command(
        "silence",
        "alerts:cmd_silence",
        "hold back a model's messages (or one SLO's) until a time: a maintenance window, audited",
    )
    silence.add_argument("--model", required=True)
    silence.add_argument("--slo", help="only this SLO (default: every SLO of the model)")
    silence.add_argument("--until", type=parse_time, required=True, help="an ISO time, e.g. 2026-09-20T18:00 (UTC)")
    silence.add_argument("--from", dest="starts", type=parse_time, help="when it starts (default: now)")
    silence.add_argument("--reason", required=True, help="why, for the audit log and the incidents it silences")
    silence.add_argument("--who", help="who asks for it, for the audit log (default: cli:<your user name>)")

    compare = command(
        "compare", "compare:cmd_compare", "what changed between two versions of a model, with significance"
    )
    compare.add_argument("--model", required=True)
    compare.add_argument("--baseline", required=True, help="the version compared against, e.g. v11")
    compare.add_argument("--candidate", required=True, help="the new version, e.g. v12")
    compare.add_argument("--start", type=parse_date, help="first day of both versions' period")
    compare.add_argument("--end", type=parse_date, help="last day of both versions' period")
    for version in ("baseline", "candidate"):
        for edge in ("start", "end"):
            compare.add_argument(f"--{version}-{edge}", type=parse_date, help=f"{edge} of the {version}'s own period")
    compare.add_argument("--segment", help="only this segment (default: every registry segment)")
    compare.add_argument(
        "--sequential", action="store_true", help="also print the canary's day-by-day confidence sequences"
    )
    compare.add_argument("--open", action="store_true", help="open the report in the browser")

    report = command("report", "report:cmd_report", "write a model's daily report (an HTML page) from the lake")
    report.add_argument("--model", help="one model (default: every model in the registry)")
    report.add_argument("--date", type=parse_date, help="the day (default: each model's last judged day)")
    report.add_argument("--open", action="store_true", help="open the (first) report in the browser")

    sql = command("sql", "inspect:cmd_sql", "run SQL against the lake's DuckDB catalog (views <model>_<table>)")
    sql.add_argument("query")
    sql.add_argument("--max-rows", type=int, default=50)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "days", 1) < 1:
        print("closedloop: --days must be at least 1", file=sys.stderr)
        return 2
    try:
        return _handler(args.handler)(args)
    except (UserError, RegistryError, LakeError, InvalidNameError) as exc:
        print(f"closedloop {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("closedloop: interrupted", file=sys.stderr)
        return 130


def _handler(name: str) -> Callable[[argparse.Namespace], int]:
    module, function = name.split(":")
    return getattr(importlib.import_module(f"orchestration.cli.{module}"), function)


if __name__ == "__main__":
    sys.exit(main())
