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

from closedloop.ingest import ingest_labels, ingest_predictions
from closedloop.lake import Lake
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
    from checks.gx_adapter import validate
    from closedloop.contract import learn_contract
    from closedloop.expectations import prediction_expectations

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
    from closedloop.baseline import current_baseline
    from closedloop.profiles import profile_day

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
        lines = [f"| GX contract validation, one predictions day ({expectations} expectations) | {rows:,} rows | {seconds:.2f} s | {peak_mb:,.0f} MB |"]
        seconds, rows, peak_mb = _in_fresh_process(_profile_day, root)
        lines.append(f"| drift profile of one predictions day | {rows:,} rows | {seconds:.2f} s | {peak_mb:,.0f} MB |")
    return lines


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


if __name__ == "__main__":
    main()
