"""Benchmarks of closedloop's timing goals on this machine (never part of the test suite).

Each case runs in a fresh process so that its peak memory is its own. Prints a Markdown
table; bench/README.md keeps the figures measured on the reference machine.
"""

import argparse
import datetime as dt
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from closedloop.core.lake import Lake
from closedloop.inputs.ingest import ingest_labels, ingest_predictions
from closedloop.registry import DEFAULT_CONFIG, load_registry
from closedloop.simulator import DEFAULT_START, simulate

LABEL_DAY = 7  # fraud labels arrive 3-45 days late: day 7 receives labels of days 0-4


def _ingest_day(root: str, table: str, queue: multiprocessing.Queue) -> None:
    """Time the second ingest of one day (the first pays one-off import and start-up costs)."""
    registry = load_registry(DEFAULT_CONFIG, landing=f"{root}/landing", lake=f"{root}/lake")
    lake, fraud = Lake(registry.lake, registry.landing), registry.model("fraud")
    if table == "labels":
        for offset in range(LABEL_DAY + 1):  # labels are joined to the predictions already ingested
            ingest_predictions(lake, fraud, DEFAULT_START + dt.timedelta(days=offset))
        day, ingest = DEFAULT_START + dt.timedelta(days=LABEL_DAY), ingest_labels
    else:
        day, ingest = DEFAULT_START, ingest_predictions
    ingest(lake, fraud, day)
    started = time.perf_counter()
    result = ingest(lake, fraud, day)
    seconds = time.perf_counter() - started
    queue.put((seconds, result.landing_rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def _in_fresh_process(target, *args) -> tuple:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    outcome = queue.get()
    process.join()
    return outcome


def bench_ingest(rows_per_day: int) -> list[str]:
    """Ingest one fraud day of predictions, and one day of label arrivals joined to 8 days of predictions."""
    lines = []
    with tempfile.TemporaryDirectory() as root:
        simulate(Path(root) / "landing", days=LABEL_DAY + 1, fraud_rows_per_day=rows_per_day, triage_rows_per_day=10)
        for table in ("predictions", "labels"):
            seconds, rows, peak_mb = _in_fresh_process(_ingest_day, root, table)
            lines.append(f"| ingest fraud {table}, one day | {rows:,} rows | {seconds:.2f} s | {peak_mb:,.0f} MB |")
    return lines


def _validate_day(root: str, queue: multiprocessing.Queue) -> None:
    """Time GX validation of the day after the baseline window with the full learned suite."""
    from closedloop.inputs.contract import learn_contract
    from closedloop.inputs.expectations import prediction_expectations
    from closedloop.inputs.gx_adapter import validate

    registry = load_registry(DEFAULT_CONFIG, landing=f"{root}/landing", lake=f"{root}/lake")
    lake, fraud = Lake(registry.lake, registry.landing), registry.model("fraud")
    day = fraud.baseline.end + dt.timedelta(days=1)
    for offset in range((day - DEFAULT_START).days + 1):
        ingest_predictions(lake, fraud, DEFAULT_START + dt.timedelta(days=offset))
    suite = prediction_expectations(fraud, day, learn_contract(lake, fraud))
    frame = lake.read_partition("fraud", "predictions", day).to_pandas()
    validate(frame, suite)
    started = time.perf_counter()
    validate(frame, suite)
    seconds = time.perf_counter() - started
    queue.put((seconds, len(frame), len(suite), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def _profile_day(root: str, queue: multiprocessing.Queue) -> None:
    """Time the daily profile of the day after the baseline window, on the frozen baseline."""
    from closedloop.drift.baseline import current_baseline
    from closedloop.drift.profiles import profile_day

    registry = load_registry(DEFAULT_CONFIG, landing=f"{root}/landing", lake=f"{root}/lake")
    lake, fraud = Lake(registry.lake, registry.landing), registry.model("fraud")
    day = fraud.baseline.end + dt.timedelta(days=1)
    baseline = current_baseline(lake, fraud)
    profile_day(lake, fraud, baseline, day)
    started = time.perf_counter()
    profile_day(lake, fraud, baseline, day)
    seconds = time.perf_counter() - started
    rows = lake.row_count(lake.partition_path("fraud", "predictions", day))
    queue.put((seconds, rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def bench_contract(rows_per_day: int) -> list[str]:
    with tempfile.TemporaryDirectory() as root:
        simulate(Path(root) / "landing", days=11, fraud_rows_per_day=rows_per_day, triage_rows_per_day=10)
        seconds, rows, expectations, peak_mb = _in_fresh_process(_validate_day, root)
        lines = [
            f"| GX contract validation, one predictions day ({expectations} expectations) | {rows:,} rows | "
            f"{seconds:.2f} s | {peak_mb:,.0f} MB |"
        ]
        seconds, rows, peak_mb = _in_fresh_process(_profile_day, root)
        lines.append(f"| drift profile of one predictions day | {rows:,} rows | {seconds:.2f} s | {peak_mb:,.0f} MB |")
    return lines


WINDOW_DAYS = 90


def _evaluate(root: str, queue: multiprocessing.Queue) -> None:
    """Time ``eval_stats`` of one day's outcomes, then the ``rolling_eval`` of a 90-day window.

    Only the first day is simulated at full size. A day's statistics are counts per score bin,
    version, segment, label state and decision, so the other days are its statistics written
    again under their dates (the bins a million rows fill are the bins every such day fills):
    matured up to ``maturity_days`` before the window's end, immature after, so that the window
    is evaluated on its matured days and estimated from the 90 matured days before them.
    """
    from closedloop.evaluation.daily import evaluate_day
    from closedloop.evaluation.eval_stats import eval_stats
    from closedloop.evaluation.outcomes import outcomes_for_day

    registry = load_registry(DEFAULT_CONFIG, landing=f"{root}/landing", lake=f"{root}/lake")
    lake, fraud = Lake(registry.lake, registry.landing), registry.model("fraud")
    for offset in range(LABEL_DAY + 1):
        ingest_predictions(lake, fraud, DEFAULT_START + dt.timedelta(days=offset))
        ingest_labels(lake, fraud, DEFAULT_START + dt.timedelta(days=offset))
    immature = outcomes_for_day(lake, fraud, DEFAULT_START, DEFAULT_START + dt.timedelta(days=LABEL_DAY)).table
    eval_stats(immature, fraud, DEFAULT_START)
    started = time.perf_counter()
    immature_stats = eval_stats(immature, fraud, DEFAULT_START)
    stats_seconds = time.perf_counter() - started
    maturity = fraud.labels.maturity_days
    matured = outcomes_for_day(lake, fraud, DEFAULT_START, DEFAULT_START + dt.timedelta(days=maturity)).table
    matured_stats = eval_stats(matured, fraud, DEFAULT_START)

    window = fraud.model_copy(
        update={"evaluation": fraud.evaluation.model_copy(update={"windows_days": (WINDOW_DAYS,)})}
    )
    days = [DEFAULT_START + dt.timedelta(days=offset) for offset in range(WINDOW_DAYS + maturity)]
    for day in days:
        stats = matured_stats if day <= days[-1] - dt.timedelta(days=maturity) else immature_stats
        dated = stats.set_column(0, "prediction_date", pa.array([day] * stats.num_rows, pa.date32()))
        lake.write_partition("fraud", "eval_stats", day, dated)
    evaluate_day(lake, window, days[-1], days[-1])
    started = time.perf_counter()
    evaluated = evaluate_day(lake, window, days[-1], days[-1])
    window_seconds = time.perf_counter() - started
    assert set(evaluated.table["labels"].to_pylist()) >= {"matured", "estimated"}, (
        "the window must be evaluated and estimated"
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((stats_seconds, immature.num_rows, immature_stats.num_rows, window_seconds, peak_mb))


def bench_evaluation(rows_per_day: int) -> list[str]:
    with tempfile.TemporaryDirectory() as root:
        simulate(Path(root) / "landing", days=LABEL_DAY + 1, fraud_rows_per_day=rows_per_day, triage_rows_per_day=10)
        stats_seconds, rows, stats_rows, window_seconds, peak_mb = _in_fresh_process(_evaluate, root)
    return [
        f"| eval_stats of one day's outcomes | {rows:,} rows | {stats_seconds:.2f} s | {peak_mb:,.0f} MB |",
        f"| rolling_eval of a {WINDOW_DAYS}-day window: every metric, interval and the estimate | "
        f"{WINDOW_DAYS} x {stats_rows:,} stats rows | {window_seconds:.2f} s | {peak_mb:,.0f} MB |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 1_000_000], help="fraud rows per day")
    args = parser.parse_args()
    print("| case | size | time | peak memory |\n|---|---:|---:|---:|")
    for rows in args.rows:
        for line in bench_ingest(rows):
            print(line, flush=True)
        for line in bench_contract(rows):
            print(line, flush=True)
        for line in bench_evaluation(rows):
            print(line, flush=True)


if __name__ == "__main__":
    main()
