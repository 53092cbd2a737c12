"""The performance estimate against the value its window realised, on the simulator's clean periods.

``python -m bench.estimation`` simulates each seed (170 days by default, so that fraud's v11 and
v12 windows mature, 45 days after they end), runs ingest, outcomes and eval_stats for every day
as of the last one, and then, for every window the pipeline would have estimated (the window's
last day not yet mature, a reference ``maturity_days`` earlier), repeats the estimate as it was
made on the window's last day: labels of days that were mature then are known, the rest are
not. Once every label has matured the window's realised metrics are computed from the same
counts. Clean windows are those whose window and reference overlap no incident of the model in
``incidents_truth.json`` (an incident of one version, such as v12's calibration shift, only
spoils that version's windows). Prints a Markdown table; bench/README.md keeps the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from closedloop.core.lake import Lake
from closedloop.core.names import ALL
from closedloop.core.specs import ModelSpec
from closedloop.evaluation.estimation import ESTIMATED_METRICS, MIN_REFERENCE_DAYS, estimate_performance
from closedloop.evaluation.eval_stats import eval_stats, score_counts
from closedloop.evaluation.metrics import evaluate
from closedloop.evaluation.outcomes import outcomes_for_day
from closedloop.evaluation.score_bins import ScoreCounts
from closedloop.inputs.ingest import ingest_labels, ingest_predictions
from closedloop.registry import DEFAULT_CONFIG, load_registry
from closedloop.simulator import DEFAULT_START, simulate

DailyCounts = dict[tuple[str, str, int], ScoreCounts]  # (model, version, day index) -> matured-label counts


@dataclass(frozen=True)
class Comparison:
    seed: int
    model: str
    version: str
    window_days: int
    end: int
    metric: str
    estimate: float
    standard_error: float
    lower: float
    upper: float
    realised: float

    @property
    def error_in_se(self) -> float:
        return (self.estimate - self.realised) / self.standard_error

    @property
    def inside(self) -> bool:
        return self.lower <= self.realised <= self.upper


def daily_counts(root: Path, seed: int, days: int, fraud_rows: int, triage_rows: int) -> tuple[DailyCounts, dict]:
    """Every simulated day counted on matured labels (as of the last day), per model and version."""
    simulation = simulate(
        root / "landing", days=days, seed=seed, fraud_rows_per_day=fraud_rows, triage_rows_per_day=triage_rows
    )
    truth = json.loads(simulation.truth_path.read_text())
    registry = load_registry(DEFAULT_CONFIG, landing=str(root / "landing"), lake=str(root / "lake"))
    lake = Lake(registry.lake, registry.landing)
    dates = [DEFAULT_START + dt.timedelta(days=offset) for offset in range(days)]
    counts: DailyCounts = {}
    for model in registry.models.values():
        for date in dates:
            ingest_predictions(lake, model, date)
            ingest_labels(lake, model, date)
        for offset, date in enumerate(dates):
            stats = eval_stats(outcomes_for_day(lake, model, date, dates[-1]).table, model, date)
            for (version, segment, _), population in score_counts(stats, "matured", pool_versions=False).items():
                if segment == ALL:
                    counts[model.name, version, offset] = population
    return counts, truth


def _sum(populations: list[ScoreCounts]) -> ScoreCounts:
    return ScoreCounts(*(sum(getattr(p, part) for p in populations) for part in ("positive", "negative", "unlabeled")))


def _unlabeled(population: ScoreCounts) -> ScoreCounts:
    rows = population.positive + population.negative + population.unlabeled
    return ScoreCounts(np.zeros_like(rows), np.zeros_like(rows), rows)


def _spoiled(truth: dict, model: str, version: str, first: int, last: int) -> bool:
    return any(
        incident["model"] == model
        and incident["version"] in (None, version)
        and incident["start_day"] <= last
        and first <= incident["end_day"]
        for incident in truth["incidents"]
    )


def clean_comparisons(
    seed: int, model: ModelSpec, counts: DailyCounts, truth: dict, replicates: int
) -> list[Comparison]:
    """Estimate against realised value for every clean window of the model that has matured."""
    maturity, days = model.labels.maturity_days, truth["days"]
    rows = []
    for window_days in model.evaluation.windows_days:
        for end in range(maturity, days - maturity):  # estimated on its last day, realised once it matured
            for version in model.versions:
                window = range(max(0, end - window_days + 1), end + 1)
                reference_days = range(max(0, end - maturity - window_days + 1), end - maturity + 1)
                if _spoiled(truth, model.name, version, window.start, end) or _spoiled(
                    truth, model.name, version, reference_days.start, reference_days.stop - 1
                ):
                    continue
                parts = {
                    day: counts[model.name, version, day] for day in window if (model.name, version, day) in counts
                }
                reference = [
                    counts[model.name, version, day] for day in reference_days if (model.name, version, day) in counts
                ]
                if not parts or len(reference) < MIN_REFERENCE_DAYS:
                    continue
                # as the window's last day saw it: only days mature by then have matured labels
                seen_then = _sum([p if day <= end - maturity else _unlabeled(p) for day, p in parts.items()])
                estimate = estimate_performance(_sum(reference), seen_then, model.threshold(version), replicates)
                if estimate is None:
                    continue
                realised = evaluate(_sum(list(parts.values())), model.threshold(version))
                for metric, value in estimate.metrics.items():
                    actual = realised[metric].value
                    if value.value is None or actual is None or not value.standard_error:
                        continue
                    rows.append(
                        Comparison(
                            seed, model.name, version, window_days, end, metric,
                            value.value, value.standard_error, value.lower, value.upper, actual,
                        )
                    )  # fmt: skip
    return rows


def table(comparisons: list[Comparison]) -> list[str]:
    """One line per seed, version, window length and metric: the latest clean window, then all of them."""
    groups: dict[tuple, list[Comparison]] = defaultdict(list)
    for c in comparisons:
        groups[c.seed, c.model, c.version, c.window_days, c.metric].append(c)
    lines = [
        "| seed | model, version | window | metric | latest clean window: estimate (SE) [95%] | realised | error / SE "
        "| clean windows | mean error / SE | max abs error / SE | realised inside 95% |",
        "|---:|---|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    order = list(ESTIMATED_METRICS)
    for (seed, model, version, window_days, metric), rows in sorted(
        groups.items(), key=lambda kv: (*kv[0][:4], order.index(kv[0][4]))
    ):
        last = max(rows, key=lambda c: c.end)
        errors = np.array([c.error_in_se for c in rows])
        day = (DEFAULT_START + dt.timedelta(days=last.end)).isoformat()
        lines.append(
            f"| {seed} | {model} {version} | {window_days}d | {metric} | {day}: {last.estimate:.4f} "
            f"({last.standard_error:.4f}) "
            f"[{last.lower:.4f}, {last.upper:.4f}] | {last.realised:.4f} | {last.error_in_se:+.2f} | {len(rows)} | "
            f"{errors.mean():+.2f} | {np.abs(errors).max():.2f} | {np.mean([c.inside for c in rows]):.0%} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8])
    parser.add_argument("--days", type=int, default=170)
    parser.add_argument("--fraud-rows", type=int, default=20_000, help="fraud predictions per day")
    parser.add_argument("--triage-rows", type=int, default=3_000, help="ticket_triage predictions per day")
    parser.add_argument("--replicates", type=int, default=200, help="bootstrap replicates per estimate")
    args = parser.parse_args()
    registry = load_registry(DEFAULT_CONFIG)
    comparisons = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as root:
            counts, truth = daily_counts(Path(root), seed, args.days, args.fraud_rows, args.triage_rows)
        for model in registry.models.values():
            comparisons += clean_comparisons(seed, model, counts, truth, args.replicates)
    print("\n".join(table(comparisons)))


if __name__ == "__main__":
    main()
