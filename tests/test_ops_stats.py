"""Operational statistics merge exactly, their quantiles keep the stated bound, and the guards catch the spike."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closedloop.core.bounds import LearnedLimits
from closedloop.core.lake import Lake
from closedloop.core.specs import OpsGuards, RegistryError, RouteGuards
from closedloop.inputs.ingest import ingest_predictions
from closedloop.ops.figures import fallback_figure, latency_cost_figure
from closedloop.ops.guards import evaluate_guards
from closedloop.ops.stats import (
    KEYS,
    LATENCY_BIN_RATIO,
    LATENCY_BINS,
    LATENCY_MAX_MS,
    LATENCY_MIN_MS,
    LATENCY_QUANTILE_RELATIVE_ERROR,
    compute_ops_stats,
    merge_ops_stats,
    ops_metrics,
    projected_daily_spend,
    read_ops_stats,
)
from closedloop.registry import load_registry
from closedloop.simulator import simulate
from tests.helpers import TEST_REGISTRY

UTC = dt.UTC
DAY = dt.datetime(2026, 9, 16, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n"
HOUR_US = 3_600 * 10**6


def predictions(
    n: int,
    *,
    seed: int,
    latency: np.ndarray | None = None,
    hours: int = 24,
) -> pa.Table:
    """An accepted predictions partition of ``n`` rows on DAY with random serving columns.

    Unless given, latencies spread log-uniformly from 0.01 ms to 2e6 ms (below, inside and above the
    histogram's range) and are rounded to 1/8 ms; costs are multiples of 1/1024 USD: their sums
    are exact in any order, so that they can be compared with ``==``.
    """
    rng = np.random.default_rng(seed)
    ts = (DAY.timestamp() * 10**6 + rng.integers(0, hours * HOUR_US, n)).astype("datetime64[us]")
    if latency is None:
        latency = np.round(8 * np.exp(rng.uniform(np.log(0.01), np.log(2e6), n))) / 8
    cost = rng.integers(0, 4_096, n) / 1024
    return pa.table(
        {
            "prediction_id": pa.array([f"p{i}" for i in range(n)], pa.string()),
            "model_version": pa.array(rng.choice(["v1", "v2"], n), pa.string()),
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "score": pa.array(rng.random(n)),
            "decision": pa.array(rng.integers(0, 2, n).astype(np.int8)),
            "latency_ms": pa.array(latency, mask=rng.random(n) < 0.1),
            "cost_usd": pa.array(cost, mask=rng.random(n) < 0.2),
            "route": pa.array(rng.choice(np.array(["large", "small", None], dtype=object), n), pa.string()),
            "is_fallback": pa.array(rng.random(n) < 0.1, mask=rng.random(n) < 0.05),
            "error": pa.array(np.where(rng.random(n) < 0.05, "timeout", None), pa.string()),
        }
    )


def reference_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    frame["hour"] = frame["ts"].dt.floor("h")
    frame["route"] = frame["route"].fillna("(none)")
    frame["is_error"] = frame["error"].notna()
    frame["is_fallback"] = frame["is_fallback"].fillna(False).astype(bool)
    frame["has_cost"] = frame["cost_usd"].notna()
    return frame


def reference_bins(latency: np.ndarray) -> np.ndarray:
    """Histogram slots of ``latency`` from explicit edges (independent of the SQL's logarithms)."""
    edges = LATENCY_MIN_MS * LATENCY_BIN_RATIO ** np.arange(LATENCY_BINS + 1)
    return np.bincount(np.searchsorted(edges, latency, side="right"), minlength=LATENCY_BINS + 2)


def sorted_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    frame["latency_histogram"] = frame["latency_histogram"].map(tuple)
    return frame.sort_values([k for k in KEYS if k in frame]).reset_index(drop=True)


# --- quantiles --------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 3_000),
    median=st.floats(2.0, 50_000.0),
    sigma=st.floats(0.01, 1.5),
    hours=st.integers(1, 24),
)
def test_quantiles_from_merged_histograms_are_within_the_stated_bound(seed, n, median, sigma, hours):
    latency = np.random.default_rng(seed).lognormal(np.log(median), sigma, n)
    table = predictions(n, seed=seed, latency=latency, hours=hours)
    stats = compute_ops_stats(table)
    metrics = ops_metrics(stats, by=())
    observed = table.column("latency_ms").drop_null().to_numpy()
    if observed.size == 0:
        assert metrics["latency_p95_ms"].isna().all()
        return
    for q in (0.5, 0.95, 0.99):
        estimate = float(metrics[f"latency_p{round(q * 100)}_ms"].iloc[0])
        sample = np.quantile(observed, q, method="inverted_cdf")
        if LATENCY_MIN_MS <= sample < LATENCY_MAX_MS:
            assert abs(estimate / sample - 1) <= LATENCY_QUANTILE_RELATIVE_ERROR * (1 + 1e-9)
        else:
            edge = LATENCY_MIN_MS if sample < LATENCY_MIN_MS else LATENCY_MAX_MS
            assert estimate == np.clip(edge, observed.min(), observed.max())
        # ... and so within the bound of the two order statistics numpy's default method interpolates.
        lower, higher = np.quantile(observed, q, method="lower"), np.quantile(observed, q, method="higher")
        bound = 1 + LATENCY_QUANTILE_RELATIVE_ERROR * (1 + 1e-9)
        assert lower / bound <= estimate <= higher * bound or not LATENCY_MIN_MS <= sample < LATENCY_MAX_MS


def test_the_stated_bound_is_under_half_the_bin_ratio_and_the_range_covers_1ms_to_10min():
    assert LATENCY_QUANTILE_RELATIVE_ERROR <= (LATENCY_BIN_RATIO - 1) / 2
    assert LATENCY_MIN_MS <= 1.0 and LATENCY_MAX_MS >= 600_000.0


def test_a_single_latency_is_reported_exactly_even_outside_the_binned_range():
    for value in (0.0, 0.4, 123.4, 2e6):
        table = predictions(1, seed=1).set_column(5, "latency_ms", pa.array([value]))
        [p95] = ops_metrics(compute_ops_stats(table), by=())["latency_p95_ms"]
        assert p95 == value


# --- exact counts, rates and costs ------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 2_000), hours=st.integers(1, 24))
def test_counts_rates_and_costs_equal_a_direct_pandas_computation(seed, n, hours):
    table = predictions(n, seed=seed, hours=hours)
    stats = compute_ops_stats(table)
    frame = reference_frame(table)

    expected = (
        frame.groupby(list(KEYS))
        .agg(
            requests=("prediction_id", "size"),
            errors=("is_error", "sum"),
            fallbacks=("is_fallback", "sum"),
            latency_count=("latency_ms", "count"),
            latency_sum_ms=("latency_ms", "sum"),
            latency_min_ms=("latency_ms", "min"),
            latency_max_ms=("latency_ms", "max"),
            cost_count=("cost_usd", "count"),
            cost_sum_usd=("cost_usd", "sum"),
        )
        .reset_index()
    )
    got = sorted_frame(stats)
    assert len(got) == len(expected)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_dtype=False, check_exact=True)
    for (_, row), (_, group) in zip(got.iterrows(), frame.groupby(list(KEYS)), strict=False):
        assert row["latency_histogram"] == tuple(reference_bins(group["latency_ms"].dropna().to_numpy()))

    metrics = ops_metrics(stats, by=("hour",)).set_index("hour")
    hourly = frame.groupby("hour")
    pd.testing.assert_series_equal(
        metrics["error_rate"], hourly["is_error"].mean(), check_names=False, check_exact=True
    )
    pd.testing.assert_series_equal(
        metrics["fallback_rate"], hourly["is_fallback"].mean(), check_names=False, check_exact=True
    )
    cost_per_1k = 1000 * hourly["cost_usd"].sum() / hourly["cost_usd"].count().where(lambda c: c > 0)
    pd.testing.assert_series_equal(metrics["cost_per_1k"], cost_per_1k, check_names=False, check_exact=True)
    total = ops_metrics(stats, by=())
    # Spend is unknown, not zero, when no prediction logged a cost.
    np.testing.assert_equal(total["cost_usd"].iloc[0], frame["cost_usd"].sum(min_count=1))
    assert total["requests"].iloc[0] == n


def test_merging_hours_and_shards_equals_computing_the_day_at_once():
    table = predictions(5_000, seed=3)
    day = compute_ops_stats(table)

    # Any split of the rows (e.g. shards computed on different machines) merges back exactly.
    shard = np.random.default_rng(0).integers(0, 3, table.num_rows)
    parts = pa.concat_tables([compute_ops_stats(table.filter(pa.array(shard == s))) for s in range(3)])
    assert sorted_frame(merge_ops_stats(parts, KEYS)).equals(sorted_frame(day))

    # The day's 24 hourly rows merge into what the day gives when computed as a single hour.
    one_bucket = table.set_column(2, "ts", pa.array([DAY] * table.num_rows, pa.timestamp("us", tz="UTC")))
    whole_day = compute_ops_stats(one_bucket).drop_columns(["hour"])
    assert sorted_frame(merge_ops_stats(day, ["model_version", "route"])).equals(sorted_frame(whole_day))
    with pytest.raises(ValueError, match="cannot merge ops_stats by"):
        merge_ops_stats(day, ["segment"])


def test_an_empty_day_has_no_rows_and_merges_to_nothing():
    stats = compute_ops_stats(predictions(0, seed=0))
    assert stats.num_rows == 0
    assert merge_ops_stats(stats).num_rows == 0 and ops_metrics(stats).empty


def test_a_model_without_latency_or_cost_gets_null_metrics_and_no_alerts(tmp_path):
    table = predictions(500, seed=4)
    for name in ("latency_ms", "cost_usd"):
        table = table.set_column(table.schema.get_field_index(name), name, pa.nulls(table.num_rows, pa.float64()))
    path = tmp_path / "part.parquet"
    pq.write_table(table, path)
    stats = compute_ops_stats(path)
    metrics = ops_metrics(stats, by=("hour",))
    for column in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "latency_mean_ms", "cost_usd", "cost_per_1k"):
        assert metrics[column].isna().all(), column
    assert projected_daily_spend(stats, DAY + dt.timedelta(hours=23)) is None
    guards = OpsGuards(max_latency_p95_ms=1.0, max_cost_per_1k=0.01, daily_budget_usd=0.01, min_requests_per_hour=1)
    results = evaluate_guards(stats, guards, [DAY + dt.timedelta(hours=h) for h in range(24)])
    assert len(results) == 3 * 24
    assert all(r.passed and r.not_enough_data and r.observed is None for r in results)


# --- budget projection ------------------------------------------------------------------------


def test_projected_spend_scales_spend_so_far_by_the_usual_traffic_shape():
    table = predictions(3_000, seed=5)
    stats = compute_ops_stats(table)
    frame = reference_frame(table)
    history = compute_ops_stats(predictions(2_000, seed=6, hours=12))  # traffic only in hours 0-11
    past = reference_frame(predictions(2_000, seed=6, hours=12))
    for h in (0, 5, 11, 23):
        as_of = DAY + dt.timedelta(hours=h)
        spend = frame.loc[frame["hour"] <= pd.Timestamp(as_of), "cost_usd"].sum()
        assert projected_daily_spend(stats, as_of) == pytest.approx(spend * 24 / (h + 1), rel=1e-12)
        share = (past["hour"].dt.hour <= h).mean()
        assert projected_daily_spend(stats, as_of, history) == pytest.approx(spend / share, rel=1e-12)


# --- the traffic spike of the simulator --------------------------------------------------------


@pytest.fixture(scope="module")
def triage_lake(tmp_path_factory) -> Lake:
    """ticket_triage ops_stats of 2026-09-08 .. 2026-09-16 (days 7-15; the spike is on day 15)."""
    root = tmp_path_factory.mktemp("spike")
    simulate(root / "landing", days=17, fraud_rows_per_day=200, triage_rows_per_day=1500)
    registry = load_registry(TEST_REGISTRY, landing=str(root / "landing"), lake=str(root / "lake"))
    lake = Lake(root=registry.lake, landing=registry.landing)
    model = registry.model("ticket_triage")
    for day in pd.date_range("2026-09-08", "2026-09-16").date:
        ingest_predictions(lake, model, day)
        stats = compute_ops_stats(lake.partition_path("ticket_triage", "predictions", day))
        lake.write_partition("ticket_triage", "ops_stats", day, stats)
    return lake


def day_stats(lake: Lake, day: str) -> pa.Table:
    return read_ops_stats(lake, "ticket_triage", day, day)


def hours_of(day: str, hours=range(24)) -> list[dt.datetime]:
    start = dt.datetime.fromisoformat(day).replace(tzinfo=UTC)
    return [start + dt.timedelta(hours=h) for h in hours]


def test_latency_and_cost_guards_fail_in_the_first_spike_hour_only(triage_lake):
    guards = OpsGuards(max_latency_p95_ms=4000, max_cost_per_1k=8.0, min_requests_per_hour=50)
    before = evaluate_guards(day_stats(triage_lake, "2026-09-15"), guards, hours_of("2026-09-15"))
    spike_day = evaluate_guards(day_stats(triage_lake, "2026-09-16"), guards, hours_of("2026-09-16", range(11)))

    quiet = before + [r for r in spike_day if r.hour.hour < 10]
    assert all(r.passed for r in quiet)
    assert sum(not r.not_enough_data for r in quiet) >= 2 * 12  # most busy hours were really checked
    first = {r.guard: r for r in spike_day if r.hour.hour == 10}
    assert set(first) == {"latency_p95_ms", "cost_per_1k"}
    for result in first.values():
        assert not result.passed and not result.not_enough_data and result.observed > result.expected
        assert result.route == "all" and result.severity == "page"
    assert first["latency_p95_ms"].observed > 2 * 4000


def test_by_default_only_the_latest_complete_hour_is_checked(triage_lake):
    guards = OpsGuards(max_latency_p95_ms=4000, routes={"llm_large": RouteGuards(max_latency_p95_ms=5000)})
    now = dt.datetime(2026, 9, 16, 11, 0, tzinfo=UTC)  # hour 10 has just ended; hour 11 is still filling
    results = evaluate_guards(day_stats(triage_lake, "2026-09-16"), guards, now=now)
    assert {(r.guard, r.route, r.hour.hour) for r in results} == {
        ("latency_p95_ms", "all", 10),
        ("latency_p95_ms", "llm_large", 10),
    }
    assert not any(r.passed for r in results)
    assert evaluate_guards(day_stats(triage_lake, "2026-09-16"), guards, now=DAY) == []


def test_the_budget_guard_fires_during_the_spike_day_and_not_on_a_normal_day(triage_lake):
    normal_day = day_stats(triage_lake, "2026-09-15")
    budget = 1.2 * float(ops_metrics(normal_day, by=())["cost_usd"].iloc[0])
    guards = OpsGuards(daily_budget_usd=budget)

    def first_failure(day: str, history: str) -> int | None:
        history_stats = read_ops_stats(
            triage_lake, "ticket_triage", history, dt.date.fromisoformat(day) - dt.timedelta(days=1)
        )
        results = evaluate_guards(day_stats(triage_lake, day), guards, hours_of(day), history=history_stats)
        return next((r.hour.hour for r in results if not r.passed), None)

    assert first_failure("2026-09-15", "2026-09-08") is None
    assert first_failure("2026-09-16", "2026-09-09") == 10


def test_a_learned_ceiling_judges_each_hour_against_the_same_hour_of_the_trailing_days(triage_lake):
    """Against the same hours of the four days before it: the spike's first hour breaks its ceiling, a
    clean day breaks none, and the spike's hours do not teach the ceiling to accept them."""
    learned = LearnedLimits(reference="trailing", periods=48, method="sd", k=4, seasonal="hour")
    guards = OpsGuards(learned={"latency_p95_ms": learned}, min_requests_per_hour=50)
    history = read_ops_stats(triage_lake, "ticket_triage", "2026-09-08", "2026-09-14")
    clean = evaluate_guards(
        day_stats(triage_lake, "2026-09-15"), guards, hours_of("2026-09-15"), learning_history=history
    )
    judged = [r for r in clean if not r.not_enough_data]
    assert len(judged) >= 8 and all(r.passed for r in judged)
    assert all(r.expected is not None for r in judged)
    # Day and night are held to their own hours: the ceilings differ from hour to hour.
    assert len({round(r.expected) for r in judged}) > len(judged) // 2

    history = read_ops_stats(triage_lake, "ticket_triage", "2026-09-08", "2026-09-15")
    spike = evaluate_guards(
        day_stats(triage_lake, "2026-09-16"), guards, hours_of("2026-09-16"), learning_history=history
    )
    assert [r.hour.hour for r in spike if not r.passed] == list(range(10, 16))  # the spike runs 10:00-16:00
    before = {r.hour.hour: r.expected for r in spike if r.hour.hour < 10 and r.expected is not None}
    assert before  # the morning is judged, not learning
    # The ceilings after the spike are still the clean days' (within one hour-of-day's mean and spread).
    ceilings = [r.expected for r in spike if 10 <= r.hour.hour < 16 and r.expected is not None]
    assert ceilings and max(ceilings) < min(r.observed for r in spike if r.hour.hour == 10)


def test_a_learned_ceiling_learns_before_it_judges(triage_lake):
    learned = LearnedLimits(reference="trailing", periods=48, method="sd", k=4, seasonal="hour")
    guards = OpsGuards(learned={"latency_p95_ms": learned}, min_requests_per_hour=50)
    alone = evaluate_guards(day_stats(triage_lake, "2026-09-16"), guards, hours_of("2026-09-16"))
    assert alone and all(r.passed and r.not_enough_data and r.expected is None for r in alone)


@pytest.mark.parametrize(
    ("learned", "says"),
    [
        ({"latncy_p95_ms": {"reference": "trailing", "periods": 48}}, r"ops\.learned\.latncy_p95_ms"),
        ({"latency_p95_ms": {"reference": "first", "periods": 48}}, r"learned\.latency_p95_ms\.reference: a guard"),
        (
            {"latency_p95_ms": {"reference": "trailing", "periods": 28, "seasonal": "weekday"}},
            r"learned\.latency_p95_ms\.seasonal: an hourly guard's season is the hour",
        ),
        ({"latency_p95_ms": {"reference": "trailing", "periods": 24, "seasonal": "hour"}}, r"at least 48 periods"),
    ],
)
def test_learned_guard_ceilings_are_validated_naming_the_key(tmp_path, learned, says):
    document = yaml.safe_load(TEST_REGISTRY.read_text())
    ops = document["models"]["ticket_triage"]["ops"]
    ops.pop("max_latency_p95_ms")
    ops["learned"] = learned
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(RegistryError, match=says):
        load_registry(path)


def test_a_guard_is_written_or_learned_not_both(tmp_path):
    document = yaml.safe_load(TEST_REGISTRY.read_text())
    document["models"]["ticket_triage"]["ops"]["learned"] = {"latency_p95_ms": {"reference": "trailing"}}
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(RegistryError, match=r"learned\.latency_p95_ms: give max_latency_p95_ms or learned"):
        load_registry(path)


def test_figures_render(triage_lake):
    stats = read_ops_stats(triage_lake, "ticket_triage", "2026-09-10", "2026-09-16")
    guards = OpsGuards(
        max_latency_p95_ms=4000,
        max_cost_per_1k=8.0,
        max_fallback_rate=0.1,
        routes={"llm_small": RouteGuards(max_latency_p95_ms=2000)},
    )
    assert latency_cost_figure(stats, guards, "ticket_triage").startswith(PNG)
    assert fallback_figure(stats, guards, "ticket_triage").startswith(PNG)


# --- registry ---------------------------------------------------------------------------------


def test_the_registry_reads_ops_guards_and_names_a_misspelt_key(tmp_path: Path):
    document = yaml.safe_load(TEST_REGISTRY.read_text())
    document["models"]["ticket_triage"]["ops"] = {
        "max_latency_p95_ms": 4000,
        "routes": {"llm_small": {"max_latency_p95_ms": 2000}},
    }
    document["models"]["fraud"].pop("ops", None)
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(document))
    ops = load_registry(path).model("ticket_triage").ops
    assert ops.max_latency_p95_ms == 4000 and ops.routes["llm_small"].max_latency_p95_ms == 2000
    assert load_registry(path).model("fraud").ops == OpsGuards()

    document["models"]["ticket_triage"]["ops"]["routes"]["llm_small"] = {"max_latncy_p95_ms": 2000}
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(
        RegistryError, match=r"models\.ticket_triage\.ops\.routes\.llm_small\.max_latncy_p95_ms: unknown key"
    ):
        load_registry(path)
