"""False incidents of a model with 50 features and 3 segments on clean days with a weekly rhythm.

``python -m bench.false_alerts`` simulates the ``wide`` model of ``config/wide.yaml``
(``closedloop.simulator.simulate_wide``: 40 numeric and 10 categorical features, segments
``region``, ``channel`` and ``tier``, weekends with fewer requests and another segment mix, one
injected fault) for each seed, runs the whole loop over it as ``closedloop run`` does (every asset
in one run, then the incident sensor's work) and scores the incidents against its
``incidents_truth.json`` (``closedloop.control.scorecard``). A clean day is one outside the fault's
window; the baseline week's days are left out of the count, since drift is not judged against
the days it was learned from. Prints a Markdown table; bench/README.md keeps the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
from pathlib import Path

from closedloop.control.incidents import read_incidents
from closedloop.control.scorecard import BASE, Scorecard, score
from closedloop.core.lake import Lake
from closedloop.registry import load_registry
from closedloop.simulator import DEFAULT_START, simulate_wide

WIDE_CONFIG = Path(__file__).resolve().parent.parent / "config" / "wide.yaml"
MODEL = "wide"


def score_wide(root: Path, days: int, seed: int, rows_per_day: int) -> Scorecard:
    """One simulated period of the wide model through the loop, scored against its truth."""
    import dagster as dg

    from orchestration.runner import handle_incidents, materialize_range

    result = simulate_wide(root / "landing", days=days, seed=seed, rows_per_day=rows_per_day)
    registry = load_registry(WIDE_CONFIG, landing=str(root / "landing"), lake=str(root / "lake"))
    instance = dg.DagsterInstance.ephemeral()
    runs = materialize_range(registry, [MODEL], DEFAULT_START, result.end, instance)
    failed = [run.failure for run in runs + handle_incidents(registry, instance) if not run.success]
    if failed:
        raise RuntimeError(f"seed {seed}: {failed[0]}")
    incidents = {MODEL: read_incidents(Lake(registry.lake, registry.landing), MODEL)}
    maturity = {MODEL: registry.model(MODEL).labels.maturity_days}
    return score(json.loads(result.truth_path.read_text()), incidents, maturity)


def judged_clean_days(card: Scorecard) -> int:
    """The clean days after the baseline week (drift is not judged against the days it was learned from)."""
    baseline = load_registry(WIDE_CONFIG).model(MODEL).baseline
    return card.clean_days[MODEL] - ((baseline.end - baseline.start).days + 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--rows", type=int, default=2_000, help="requests per weekday (about 60%% of it at weekends)")
    args = parser.parse_args(argv)
    results = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix="closedloop-wide-") as tmp:
            started = dt.datetime.now(dt.UTC)
            card = score_wide(Path(tmp), args.days, seed, args.rows)
            seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
            results.append({"seed": seed, "card": card, "clean_days": judged_clean_days(card), "seconds": seconds})
    print("| seed | days | clean days | false incidents | per 30 clean days | caught | delay (days) | run |")
    print("|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in results:
        card, false_alerts = r["card"], r["card"].false_alerts_of(BASE)
        delays = ", ".join(f"{d.truth_id} {d.delay_days}" for d in card.detections)
        print(
            f"| {r['seed']} | {args.days} | {r['clean_days']} | {len(false_alerts)} | "
            f"{30 * len(false_alerts) / r['clean_days']:.2f} | {card.caught}/{len(card.detections)} | {delays} | "
            f"{r['seconds']:.0f} s |"
        )
        for incident in false_alerts:
            print(f"|  |  |  | {incident} |  |  |  |  |")
    clean = sum(r["clean_days"] for r in results)
    false = sum(len(r["card"].false_alerts_of(BASE)) for r in results)
    print(f"\nAll seeds: {false} false incidents in {clean} clean days: {30 * false / clean:.2f} per 30 clean days")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
