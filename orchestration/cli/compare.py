"""``closedloop compare``: what changed between two versions of a model, written as a report."""

import argparse
import webbrowser

from closedloop.compare.comparison import STEPS, run_comparison
from closedloop.compare.request import CompareError, plan_comparison
from orchestration.cli.common import UserError, emit, lake_of, load, progress


def cmd_compare(args: argparse.Namespace) -> int:
    registry = load(args)
    periods = {
        name: getattr(args, name)
        for name in ("start", "end", "baseline_start", "baseline_end", "candidate_start", "candidate_end", "segment")
    }
    lake = lake_of(registry)
    try:
        request = plan_comparison(lake, registry, args.model, args.baseline, args.candidate, **periods)
    except CompareError as exc:
        raise UserError(str(exc)) from None
    steps = progress(STEPS, "comparing", quiet=args.json)

    def step(what: str) -> None:
        steps.set_postfix_str(what)
        steps.update(1)

    try:
        comparison, report = run_comparison(lake, registry, request, step)
    finally:
        steps.close()
    document = comparison.document
    verdict = document["verdict"]
    lines = [document["headline"], "", f"Verdict: {verdict['summary']}."]
    for title, key in (
        ("Worse", "worse"),
        ("Better", "better"),
        ("Changed", "changed"),
        ("Not distinguishable yet", "not_distinguishable"),
        ("Check before 100%", "check_before_full_rollout"),
    ):
        if verdict[key]:
            lines += ["", f"{title}:", *(f"  - {item}" for item in verdict[key])]
    if args.sequential and verdict["canary"]:
        lines += [
            "",
            "The canary, day by day (valid however often you look):",
            *(f"  - {x}" for x in verdict["canary"]),
        ]
    lines += ["", f"Report: {report}", f"JSON:   {report.with_name('comparison.json')}"]
    emit({**document, "report": str(report)}, args.json, "\n".join(lines))
    if args.open:
        webbrowser.open(report.as_uri())
    return 0
