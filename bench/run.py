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

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from closedloop.core.lake import Lake
from closedloop.core.specs import ModelSpec
from closedloop.evaluation.eval_stats import eval_stats
from closedloop.inputs.ingest import ingest_labels, ingest_predictions
from closedloop.ops.stats import compute_ops_stats
from closedloop.registry import DEFAULT_CONFIG, load_registry
from closedloop.simulator import DEFAULT_START, simulate
from closedloop.simulator import fraud as fraud_sim

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


COMPARE_DAYS = 30
COMPARE_START = DEFAULT_START + dt.timedelta(days=fraud_sim.V12_CANARY_DAY)  # the day v12's canary starts
# The fraud score's latent logit: the simulator's country and channel risks, the rest of its
# features as a normal part, and its compromised sessions as a bump (fraud.py's constants). Tuned
# so the day looks like the simulator's: ~2.9% fraud, ~1.9% flagged at 0.5, ROC AUC ~0.91.
FEATURE_LOGIT = (-2.8, 1.3)  # mean, sd of the features' part beyond country and channel
RISKY_SESSION_BUMP = 6.5
V12_LOGIT_SHIFT = -0.2  # v12 ranks like v11, a little lower in its scores


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _payments(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A day's payments as the simulator makes them: country, channel, the fraud logit and the label."""
    country = rng.choice(len(fraud_sim.COUNTRIES), rows, p=fraud_sim.COUNTRY_P)
    channel = rng.choice(len(fraud_sim.CHANNELS), rows, p=fraud_sim.CHANNEL_P)
    logit = (
        fraud_sim.INTERCEPT
        + np.asarray(fraud_sim.COUNTRY_RISK)[country]
        + np.asarray(fraud_sim.CHANNEL_RISK)[channel]
        + rng.normal(*FEATURE_LOGIT, rows)
        + RISKY_SESSION_BUMP * (rng.random(rows) < fraud_sim.RISKY_SESSION_SHARE)
    )
    label = (rng.random(rows) < _sigmoid(logit + rng.normal(0.0, fraud_sim.HIDDEN_SD, rows))).astype(np.int8)
    return country, channel, logit, label


def _write_comparison_day(lake: Lake, model: ModelSpec, index: int, rows: int) -> int:
    """One day of v11 and v12 sharing the traffic as a canary; returns its eval_stats rows.

    Vectorised like the simulator, without its features: the day's outcomes as known the morning
    after the last of the 30 days (labels arrive 3-45 days late, so none has matured), its
    ``eval_stats``, its ``ops_stats``, and its predictions with only the columns the comparison
    reads (the registry's review_rate reads ``decision`` by ``model_version`` and ``ts``) and the
    segments.
    """
    rng = np.random.default_rng([7, index])
    day = COMPARE_START + dt.timedelta(days=index)
    country, channel, logit, label = _payments(rng, rows)
    v12 = rng.random(rows) < fraud_sim.V12_CANARY_SHARE
    score_logit = fraud_sim.CALIBRATION * logit + rng.normal(0.0, fraud_sim.MODEL_NOISE_SD, rows)
    score = _sigmoid(np.where(v12, score_logit + V12_LOGIT_SHIFT, score_logit))
    threshold = np.where(v12, model.versions["v12"].threshold, model.versions["v11"].threshold)
    decision = pa.array((score >= threshold).astype(np.int8), pa.int8())
    hour_p = fraud_sim.HOUR_WEIGHTS / fraud_sim.HOUR_WEIGHTS.sum()
    day_us = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()) * 1_000_000
    offset_us = np.sort(rng.choice(24, rows, p=hour_p) * 3_600_000_000 + rng.integers(0, 3_600_000_000, rows))
    ts = pa.array(day_us + offset_us, pa.timestamp("us", tz="UTC"))
    delay_days = fraud_sim.LABEL_DELAY_MIN_DAYS + np.minimum(
        rng.gamma(*fraud_sim.LABEL_DELAY_GAMMA, rows), fraud_sim.LABEL_DELAY_MAX_DAYS - fraud_sim.LABEL_DELAY_MIN_DAYS
    )
    age_days = (COMPARE_DAYS - index) - offset_us / 86_400_000_000  # as of the day after the last
    known = (rng.random(rows) < fraud_sim.LABEL_RATE) & (delay_days <= age_days)
    version = pa.DictionaryArray.from_arrays(pa.array(v12.astype(np.int8)), ["v11", "v12"]).cast(pa.string())
    segments = {
        "country": pa.DictionaryArray.from_arrays(pa.array(country), fraud_sim.COUNTRIES).cast(pa.string()),
        "channel": pa.DictionaryArray.from_arrays(pa.array(channel), fraud_sim.CHANNELS).cast(pa.string()),
    }
    outcomes = pa.table(
        {
            "model_version": version,
            "score": score,
            "decision": decision,
            **segments,
            "label": pa.array(label, pa.int8(), mask=~known),
            "label_matured": pa.array(np.zeros(rows, bool)),
        }
    )
    stats = eval_stats(outcomes, model, day)
    lake.write_partition(model.name, "eval_stats", day, stats)
    latency_mu = np.log(fraud_sim.LATENCY_MEDIAN_MS)
    served = pa.table(
        {
            "model_version": version,
            "ts": ts,
            "decision": decision,
            "latency_ms": np.round(rng.lognormal(latency_mu, fraud_sim.LATENCY_SIGMA, rows), 2),
            "cost_usd": pa.nulls(rows, pa.float64()),
            "route": pa.nulls(rows, pa.string()),
            "is_fallback": pa.array(np.zeros(rows, bool)),
            "error": pa.nulls(rows, pa.string()),
            **segments,
        }
    )
    lake.write_partition(model.name, "ops_stats", day, compute_ops_stats(served))
    lake.write_partition(model.name, "predictions", day, served.select(["model_version", "ts", "decision", *segments]))
    return stats.num_rows


def _build_comparison_lake(root: str, rows: int, queue: multiprocessing.Queue) -> None:
    registry = load_registry(DEFAULT_CONFIG, landing=f"{root}/landing", lake=f"{root}/lake")
    lake, fraud = Lake(registry.lake, registry.landing), registry.model("fraud")
    started = time.perf_counter()
    stats_rows = [_write_comparison_day(lake, fraud, index, rows) for index in range(COMPARE_DAYS)]
    queue.put((time.perf_counter() - started, stats_rows))


def _timed_default_comparison(root: str):
    """The second run (the first pays imports) of fraud v11 against v12 as `closedloop compare` plans it."""
    from closedloop.compare.comparison import compare_versions
    from closedloop.compare.request import plan_comparison

    registry = load_registry(DEFAULT_CONFIG, landing=f"{root}/landing", lake=f"{root}/lake")
    lake, fraud = Lake(registry.lake, registry.landing), registry.model("fraud")

    def compare():
        return compare_versions(lake, fraud, plan_comparison(lake, registry, "fraud", "v11", "v12"))

    compare()
    started = time.perf_counter()
    comparison = compare()
    return time.perf_counter() - started, comparison


def _compare(root: str, queue: multiprocessing.Queue) -> None:
    """Time the comparison of v12's canary with v11, from planning it to drawing its figures."""
    from closedloop.compare.request import SAME_DAYS

    seconds, comparison = _timed_default_comparison(root)
    assert comparison.request.population == SAME_DAYS and comparison.request.baseline_period.days == COMPARE_DAYS
    assert comparison.document["labels"]["label_set"] == "known so far", "the 30 days' labels are those known so far"
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((seconds, len(comparison.document["metrics"]), len(comparison.figures), peak_mb))


def bench_comparison(rows_per_day: int) -> list[str]:
    with tempfile.TemporaryDirectory() as root:
        _, stats_rows = _in_fresh_process(_build_comparison_lake, root, rows_per_day)
        seconds, metrics, figures, peak_mb = _in_fresh_process(_compare, root)
    return [
        f"| compare two versions over {COMPARE_DAYS} days, from daily statistics ({metrics} metrics, "
        f"{figures} figures) | {COMPARE_DAYS} x {rows_per_day:,} rows ({min(stats_rows):,}-{max(stats_rows):,} "
        f"stats rows a day) | {seconds:.2f} s | {peak_mb:,.0f} MB |"
    ]


PAIRED_DAYS = 7  # fraud's v12 scores every payment in shadow for a week before its canary
PAIRED_START = DEFAULT_START + dt.timedelta(days=fraud_sim.V12_SHADOW_DAY)


def _write_shadow_day(lake: Lake, model: ModelSpec, index: int, rows: int) -> None:
    """One day of v11 serving every payment and v12 scoring each in shadow, joined on request_id.

    The served outcomes (as known a week after the last shadow day), their eval_stats, ops_stats
    and predictions, and the shadow table with v12's score of the same requests.
    """
    rng = np.random.default_rng([11, index])
    day = PAIRED_START + dt.timedelta(days=index)
    country, channel, logit, label = _payments(rng, rows)
    served_score = _sigmoid(fraud_sim.CALIBRATION * logit + rng.normal(0.0, fraud_sim.MODEL_NOISE_SD, rows))
    shadow_logit = fraud_sim.CALIBRATION * logit + rng.normal(0.0, fraud_sim.MODEL_NOISE_SD, rows) + V12_LOGIT_SHIFT
    shadow_score = _sigmoid(shadow_logit)
    day_us = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()) * 1_000_000
    ts = pa.array(day_us + np.sort(rng.integers(0, 86_400_000_000, rows)), pa.timestamp("us", tz="UTC"))
    ids = np.char.add(f"pay_{day:%Y%m%d}_", np.arange(rows).astype(str))
    known = rng.random(rows) < fraud_sim.LABEL_RATE * 0.8
    segments = {
        "country": pa.DictionaryArray.from_arrays(pa.array(country), fraud_sim.COUNTRIES).cast(pa.string()),
        "channel": pa.DictionaryArray.from_arrays(pa.array(channel), fraud_sim.CHANNELS).cast(pa.string()),
    }
    decision = pa.array((served_score >= model.versions["v11"].threshold).astype(np.int8), pa.int8())
    outcomes = pa.table(
        {
            "prediction_id": pa.array(ids),
            "model_version": pa.array(["v11"] * rows),
            "ts": ts,
            "score": served_score,
            "decision": decision,
            "request_id": pa.array(ids),
            **segments,
            "label": pa.array(label, pa.int8(), mask=~known),
            "label_matured": pa.array(np.zeros(rows, bool)),
        }
    )
    lake.write_partition(model.name, "outcomes", day, outcomes)
    lake.write_partition(model.name, "eval_stats", day, eval_stats(outcomes, model, day))
    served = outcomes.select(["model_version", "ts", "decision", *segments]).append_column(
        "latency_ms", pa.array(rng.lognormal(np.log(fraud_sim.LATENCY_MEDIAN_MS), fraud_sim.LATENCY_SIGMA, rows))
    )
    for name, kind in (("cost_usd", pa.float64()), ("route", pa.string()), ("error", pa.string())):
        served = served.append_column(name, pa.nulls(rows, kind))
    served = served.append_column("is_fallback", pa.array(np.zeros(rows, bool)))
    lake.write_partition(model.name, "ops_stats", day, compute_ops_stats(served))
    lake.write_partition(model.name, "predictions", day, served.select(["model_version", "ts", "decision"]))
    shadow = pa.table(
        {
            "prediction_id": pa.array(np.char.add("shadow_", ids)),
            "model_version": pa.array(["v12"] * rows),
            "ts": ts,
            "score": shadow_score,
            "decision": pa.array((shadow_score >= model.versions["v12"].threshold).astype(np.int8), pa.int8()),
            "request_id": pa.array(ids),
        }
    )
    lake.write_partition(model.name, "shadow", day, shadow)


def _build_paired_lake(root: str, rows: int, queue: multiprocessing.Queue) -> None:
    registry = load_registry(DEFAULT_CONFIG, landing=f"{root}/landing", lake=f"{root}/lake")
    lake, fraud = Lake(registry.lake, registry.landing), registry.model("fraud")
    for index in range(PAIRED_DAYS):
        _write_shadow_day(lake, fraud, index, rows)
    queue.put(None)


def _compare_paired(root: str, queue: multiprocessing.Queue) -> None:
    """Time the paired comparison of v12's shadow week: the join on request_id and every section."""
    from closedloop.compare.request import PAIRED

    seconds, comparison = _timed_default_comparison(root)
    assert comparison.request.population == PAIRED and comparison.request.baseline_period.days == PAIRED_DAYS
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((seconds, comparison.document["labels"]["versions"]["v12"]["rows"], peak_mb))


def bench_paired_comparison(rows_per_day: int) -> list[str]:
    with tempfile.TemporaryDirectory() as root:
        _in_fresh_process(_build_paired_lake, root, rows_per_day)
        seconds, paired, peak_mb = _in_fresh_process(_compare_paired, root)
    return [
        f"| compare two versions paired on shadow traffic, exact from the rows ({PAIRED_DAYS} days) | "
        f"{paired:,} paired requests | {seconds:.2f} s | {peak_mb:,.0f} MB |"
    ]


def _range_run(root: str, days: int, storage: str, queue: multiprocessing.Queue) -> None:
    """One ``closedloop run`` of fraud over ``days`` small days, as the command line runs it, per step.

    ``storage`` is Dagster's default local storage (SQLite files in a DAGSTER_HOME) or its in-memory
    instance: the difference is the bookkeeping Dagster writes per partition, event and check.
    """
    import dagster as dg

    from orchestration.runner import materialize_range

    registry = load_registry(DEFAULT_CONFIG, landing=f"{root}/landing", lake=f"{root}/lake-{storage}")
    end = DEFAULT_START + dt.timedelta(days=days - 1)
    fraud = registry.model("fraud").model_copy(update={"end_date": end})
    registry = registry.model_copy(update={"models": {"fraud": fraud}})
    home = Path(root) / f"dagster-{storage}"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    instance = dg.DagsterInstance.from_config(str(home)) if storage == "sqlite" else dg.DagsterInstance.ephemeral()
    started = time.perf_counter()
    [outcome] = materialize_range(registry, ["fraud"], DEFAULT_START, end, instance)
    seconds = time.perf_counter() - started
    steps = {s.step_key: (s.end_time or 0) - (s.start_time or 0) for s in instance.get_run_step_stats(outcome.run_id)}
    events = len(instance.all_logs(outcome.run_id))
    queue.put((seconds, steps, events, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def bench_range_run(days: int, rows_per_day: int) -> list[str]:
    """A backfill of many small days: what a day costs beyond its rows (GX, the classifier, Dagster's events)."""
    lines = []
    with tempfile.TemporaryDirectory() as root:
        simulate(Path(root) / "landing", days=days, seed=7, fraud_rows_per_day=rows_per_day, triage_rows_per_day=10)
        for storage in ("sqlite", "memory"):
            seconds, steps, events, peak_mb = _in_fresh_process(_range_run, root, days, storage)
            slowest = ", ".join(
                f"{k.split('__', 1)[1]} {v:.1f} s" for k, v in sorted(steps.items(), key=lambda kv: -kv[1])[:6]
            )
            lines.append(
                f"| fraud run of {days} days, Dagster {storage} storage ({events:,} events; {slowest}) | "
                f"{days} x {rows_per_day:,} rows | {seconds:.1f} s ({seconds / days:.2f} s a day) | {peak_mb:,.0f} MB |"
            )
    return lines


ID_LABEL_DELAY_DAYS = (3, 45)  # fraud labels arrive 3-45 days after their prediction
ID_LABEL_SHARE = 0.25  # about a quarter of fraud's predictions get a label
LABEL_SPREAD_DAYS = ID_LABEL_DELAY_DAYS[1] - ID_LABEL_DELAY_DAYS[0] + 1


def _day_ids(day: dt.date, rows: int, kind: str, rng: np.random.Generator) -> pa.Array:
    """A day's prediction ids: the simulator's ``fraud-YYYYMMDD-000001`` or random hex (UUID-like)."""
    if kind == "sequential":
        ids = pa.array(np.char.add(f"fraud-{day:%Y%m%d}-", np.char.zfill(np.arange(1, rows + 1).astype(str), 6)))
        return ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids  # numpy strings may come chunked
    return pa.array([f"{a:016x}{b:016x}" for a, b in rng.integers(0, 2**63, (rows, 2)).tolist()], pa.string())


def _build_id_lake(root: str, days: int, rows: int, kind: str, queue: multiprocessing.Queue) -> None:
    """``days`` predictions partitions of ``rows`` rows (only the columns the id checks read) and
    the labels landed on the last day: a quarter of the predictions made 3 to 45 days before it."""
    registry = load_registry(DEFAULT_CONFIG, landing=f"{root}/landing", lake=f"{root}/lake")
    lake = Lake(registry.lake, registry.landing)
    rng = np.random.default_rng(18)
    last = DEFAULT_START + dt.timedelta(days=days - 1)
    labelled = []
    started = time.perf_counter()
    for index in range(days):
        day = DEFAULT_START + dt.timedelta(days=index)
        ids = _day_ids(day, rows, kind, rng)
        day_us = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()) * 1_000_000
        ts = pa.array(day_us + np.sort(rng.integers(0, 86_400_000_000, rows)), pa.timestamp("us", tz="UTC"))
        score = rng.random(rows)
        predictions = pa.table(
            {
                "prediction_id": ids,
                "model_version": pa.array(["v11"] * rows),
                "ts": ts,
                "score": score,
                "decision": pa.array((score >= 0.5).astype(np.int8), pa.int8()),
            }
        )
        lake.write_partition("fraud", "predictions", day, predictions)
        age = (last - day).days
        if ID_LABEL_DELAY_DAYS[0] <= age <= ID_LABEL_DELAY_DAYS[1]:
            labelled.append(ids.take(pa.array(np.flatnonzero(rng.random(rows) < ID_LABEL_SHARE / LABEL_SPREAD_DAYS))))
    ids = pa.concat_arrays(labelled)
    last_us = int(dt.datetime.combine(last, dt.time(), dt.UTC).timestamp()) * 1_000_000
    labels = pa.table(
        {
            "prediction_id": ids,
            "label": pa.array((rng.random(len(ids)) < 0.03).astype(np.int8), pa.int8()),
            "label_ts": pa.array(
                last_us + np.sort(rng.integers(0, 86_400_000_000, len(ids))), pa.timestamp("us", tz="UTC")
            ),
        }
    )
    folder = lake.landing_dir("fraud", "labels", last)
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(labels, folder / "part-00.parquet", compression="zstd")
    queue.put((time.perf_counter() - started, len(ids)))


def _check_ids(root: str, days: int, queue: multiprocessing.Queue) -> None:
    """Time the repeated-id check of the last day and the ingest of its labels: first and second call."""
    from closedloop.inputs.contract import repeated_prediction_ids

    registry = load_registry(DEFAULT_CONFIG, landing=f"{root}/landing", lake=f"{root}/lake")
    lake, fraud = Lake(registry.lake, registry.landing), registry.model("fraud")
    last = DEFAULT_START + dt.timedelta(days=days - 1)
    timings = {}
    for name, call in (
        ("repeated", lambda: repeated_prediction_ids(lake, fraud, [last])),
        ("labels", lambda: ingest_labels(lake, fraud, last)),
    ):
        started = time.perf_counter()
        first = call()
        timings[f"{name}_first"] = time.perf_counter() - started
        started = time.perf_counter()
        second = call()
        timings[name] = time.perf_counter() - started
        assert first == second
    repeated = repeated_prediction_ids(lake, fraud, [last])[last]
    labels = ingest_labels(lake, fraud, last)
    assert repeated == 0 and labels.unknown_predictions == 0, (repeated, labels)
    timings["label_rows"] = labels.accepted
    timings["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(timings)


def bench_id_checks(days_list: list[int], rows_per_day: int, kinds: list[str]) -> list[str]:
    """Reading earlier days' prediction ids: the repeated-id check and label ingest over many days."""
    lines = []
    for kind in kinds:
        for days in days_list:
            with tempfile.TemporaryDirectory() as root:
                build_seconds, _ = _in_fresh_process(_build_id_lake, root, days, rows_per_day, kind)
                t = _in_fresh_process(_check_ids, root, days)
            size = f"{days} x {rows_per_day:,} rows, {kind} ids"
            lines.append(
                f"| repeated prediction ids of the last day against every other day (first call "
                f"{t['repeated_first']:.2f} s) | {size} | {t['repeated']:.2f} s | {t['peak_mb']:,.0f} MB |"
            )
            lines.append(
                f"| ingest the last day's labels ({t['label_rows']:,}, of the 3-45 days before; first call "
                f"{t['labels_first']:.2f} s) | {size} | {t['labels']:.2f} s | {t['peak_mb']:,.0f} MB |"
            )
            lines.append(f"<!-- the lake of {days} days took {build_seconds:.0f} s to build -->")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 1_000_000], help="fraud rows per day")
    parser.add_argument(
        "--range-days", type=int, default=0, help="only time a run over this many small days (2,000 rows each)"
    )
    parser.add_argument(
        "--id-days",
        type=int,
        nargs="+",
        default=[],
        help="only time the prediction-id checks over lakes of this many days (of --rows rows, default 1M)",
    )
    parser.add_argument("--ids", nargs="+", default=["sequential"], choices=["sequential", "random"])
    args = parser.parse_args()
    print("| case | size | time | peak memory |\n|---|---:|---:|---:|")
    if args.id_days:
        rows = args.rows[-1] if args.rows != parser.get_default("rows") else 1_000_000
        for line in bench_id_checks(args.id_days, rows, args.ids):
            print(line, flush=True)
        return
    if args.range_days:
        for line in bench_range_run(args.range_days, 2_000):
            print(line, flush=True)
        return
    for rows in args.rows:
        for line in bench_ingest(rows):
            print(line, flush=True)
        for line in bench_contract(rows):
            print(line, flush=True)
        for line in bench_evaluation(rows):
            print(line, flush=True)
        for line in bench_comparison(rows):
            print(line, flush=True)
        for line in bench_paired_comparison(rows):
            print(line, flush=True)


if __name__ == "__main__":
    main()
