"""Baselines and daily profiles: counts checked against numpy/Counter on the raw rows, merges against one pass."""

import collections
import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.core.names import ALL
from closedloop.drift.baseline import BINS, freeze_baseline, load_baseline, save_baseline
from closedloop.drift.profiles import hll_estimate, merge_profiles, profile_day, profile_table
from tests.helpers import hand_made_baseline

DAY = dt.date(2026, 9, 3)


def one_row(profile: pa.Table, column: str, version: str = "v11") -> dict:
    [row] = [r for r in profile.to_pylist() if r["column"] == column and r["model_version"] == version]
    return row


specials = st.sampled_from([None, float("nan"), float("inf"), -float("inf")])
numbers = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.integers(-5, 5).map(float), specials)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(numbers, min_size=0, max_size=300),
    edges=st.lists(st.integers(-6, 6).map(float), min_size=0, max_size=8, unique=True),
)
def test_numeric_profile_matches_numpy(values, edges):
    edges = sorted(edges)
    table = pa.table({"model_version": ["v11"] * len(values), "x": pa.array(values, pa.float64())})
    profile = profile_table(table, hand_made_baseline({"x": edges}, {}), DAY)
    raw = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    finite = raw[np.isfinite(raw)]
    if not values:
        assert profile.num_rows == 0
        return
    row = one_row(profile, "x")
    assert (row["rows"], row["count"], row["nulls"]) == (len(values), finite.size, len(values) - finite.size)
    assert row["bins"] == np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1).tolist()
    assert row["sum"] == pytest.approx(finite.sum(), rel=1e-9, abs=1e-6)
    assert row["sum_sq"] == pytest.approx((finite**2).sum(), rel=1e-9, abs=1e-6)
    assert (row["min"], row["max"]) == ((finite.min(), finite.max()) if finite.size else (None, None))


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.sampled_from("abcdefgh")), min_size=1, max_size=300),
    versions=st.lists(st.sampled_from(["v11", "v12"]), min_size=300, max_size=300),
    known=st.sets(st.sampled_from("abcdefxyz")),
    top_size=st.integers(0, 4),
)
def test_categorical_profile_matches_counting(values, versions, known, top_size):
    known = sorted(known)
    top = known[:top_size]
    versions = versions[: len(values)]
    table = pa.table({"model_version": versions, "c": pa.array(values, pa.string())})
    profile = profile_table(table, hand_made_baseline({}, {"c": (top, known)}), DAY)
    for version in set(versions):
        seen = collections.Counter(v for v, w in zip(values, versions, strict=False) if w == version)
        row = one_row(profile, "c", version)
        assert row["top_counts"] == [seen[v] for v in top]
        assert row["other"] == sum(n for v, n in seen.items() if v in known and v not in top)
        assert row["unseen"] == sum(n for v, n in seen.items() if v is not None and v not in known)
        assert row["nulls"] == seen[None]
        assert row["rows"] == sum(seen.values())


@pytest.mark.parametrize("distinct", [1, 30, 2_000, 60_000])
def test_hyperloglog_counts_distinct_values_within_five_percent(distinct):
    values = [f"id-{i % distinct}" for i in range(max(distinct, 5_000))]
    table = pa.table({"model_version": ["v11"] * len(values), "c": values})
    row = one_row(profile_table(table, hand_made_baseline({}, {"c": ([], [])}), DAY), "c")
    assert len(row["hll"]) == 4096
    assert hll_estimate(np.array(row["hll"])) == pytest.approx(distinct, rel=0.05)  # 3 standard errors of 1.6%


def fraud_day(rng: np.random.Generator, n: int, fraud) -> pa.Table:
    """Accepted fraud predictions with every contract column (numbers lognormal, ids Zipf-distributed)."""
    columns = {
        "model_version": rng.choice(["v11", "v12"], n, p=[0.8, 0.2]),
        "score": rng.beta(1, 20, n),
        "decision": (rng.random(n) < 0.03).astype(np.int8),
    }
    for name in fraud.features.numeric:
        values = rng.lognormal(3.0, 1.0, n)
        values[rng.random(n) < 0.05] = np.nan
        columns[name] = values
    for name in fraud.features.categorical + fraud.segments:
        columns[name] = pa.array(rng.choice(["US", "DE", "FR", None], n, p=[0.5, 0.3, 0.15, 0.05]))
    columns["merchant_id"] = [f"m{k}" for k in rng.zipf(1.3, n) % 5_000]
    return pa.table(columns)


def write_days(lake, fraud, days, seed=5) -> list[pa.Table]:
    rng = np.random.default_rng(seed)
    tables = [fraud_day(rng, int(n), fraud) for n in rng.integers(200, 3_000, len(days))]
    for day, table in zip(days, tables, strict=False):
        lake.write_partition("fraud", "predictions", day, table)
    return tables


def test_merged_daily_profiles_equal_profiling_the_window_at_once(registry, lake):
    fraud = registry.model("fraud")
    days = [DAY + dt.timedelta(days=i) for i in range(5)]
    tables = write_days(lake, fraud, days)
    baseline = hand_made_baseline(
        {"score": [0.01, 0.05, 0.5], "decision": [0.0, 1.0], "amount": [5.0, 20.0, 50.0]},
        {"merchant_id": (["m1", "m2"], ["m1", "m2", "m3", "m7"]), "country": (["US"], ["US", "DE"])},
    )
    daily = [profile_day(lake, fraud, baseline, day) for day in days]

    key = lambda r: (r["model_version"], r["column"])  # noqa: E731
    for across_versions in (False, True):
        merged = sorted(merge_profiles(daily, across_versions=across_versions).to_pylist(), key=key)
        at_once = sorted(
            merge_profiles(
                [profile_table(pa.concat_tables(tables), baseline, DAY)], across_versions=across_versions
            ).to_pylist(),
            key=key,
        )
        assert [key(r) for r in merged] == [key(r) for r in at_once] and len(merged) == (5 if across_versions else 10)
        for mine, theirs in zip(merged, at_once, strict=False):
            assert mine["days"] == len(days) and theirs["days"] == 1
            for field in ("rows", "count", "nulls", "min", "max", "bins", "top_counts", "other", "unseen", "hll"):
                assert mine[field] == theirs[field], field
            for field in ("sum", "sum_sq"):  # float sums depend on the order of addition
                assert mine[field] == (None if theirs[field] is None else pytest.approx(theirs[field], rel=1e-12))
    assert {r["model_version"] for r in merge_profiles(daily, across_versions=True).to_pylist()} == {ALL}


def test_profiles_of_different_baselines_are_not_merged(registry):
    table = fraud_day(np.random.default_rng(1), 100, registry.model("fraud"))
    first = profile_table(table, hand_made_baseline({"score": [0.5]}, {}), DAY)
    second = first.set_column(
        first.schema.get_field_index("baseline_hash"), "baseline_hash", pa.array(["other"] * first.num_rows)
    )
    with pytest.raises(ValueError, match="different baselines"):
        merge_profiles([first, second])


def test_baseline_freezes_quantile_edges_top_values_and_its_own_profile(registry, lake):
    fraud = registry.model("fraud")
    tables = write_days(lake, fraud, [fraud.baseline.start + dt.timedelta(days=i) for i in range(3)])
    rows = sum(t.num_rows for t in tables)

    baseline = freeze_baseline(lake, fraud)

    amount = baseline.numeric["amount"]
    assert len(amount.edges) == BINS + 1 and list(amount.edges) == sorted(set(amount.edges))
    assert 0.5 in baseline.numeric["score"].edges  # the versions' threshold is an edge
    assert amount.missing_rate == pytest.approx(0.05, abs=0.015)
    merchants = baseline.categorical["merchant_id"]
    assert len(merchants.top) == 50 and list(merchants.known)[:50] == list(merchants.top)
    assert list(merchants.known.values()) == sorted(merchants.known.values(), reverse=True)
    profile = {r["column"]: r for r in baseline.profile.to_pylist()}
    bins = profile["amount"]["bins"]
    assert bins[0] == bins[-1] == 0  # the baseline itself never under- or overflows
    assert max(bins[1:-1]) - min(bins[1:-1]) <= 1  # quantile bins of distinct values hold equal shares
    assert profile["merchant_id"]["unseen"] == 0 and profile["merchant_id"]["rows"] == rows
    assert baseline.name == f"window_{baseline.hash}"
    assert freeze_baseline(lake, fraud).hash == baseline.hash  # the same data freezes the same baseline


def test_baseline_round_trips_and_a_name_never_changes_meaning(registry, lake):
    fraud = registry.model("fraud")
    write_days(lake, fraud, [fraud.baseline.start])
    baseline = freeze_baseline(lake, fraud, name="launch")
    path = save_baseline(lake, baseline)
    assert path == lake.document_path("fraud", "baselines", "launch")
    loaded = load_baseline(lake, "fraud", "launch")
    assert loaded.hash == baseline.hash and loaded.profile.equals(baseline.profile)
    assert (loaded.numeric, loaded.categorical, loaded.rows) == (baseline.numeric, baseline.categorical, baseline.rows)
    save_baseline(lake, baseline)  # the same content again is fine

    write_days(lake, fraud, [fraud.baseline.start], seed=6)
    with pytest.raises(ValueError, match="already holds other content"):
        save_baseline(lake, freeze_baseline(lake, fraud, name="launch"))

    edited = json.loads(path.read_text())
    edited["numeric"]["amount"]["edges"][3] += 1.0
    path.write_text(json.dumps(edited))
    with pytest.raises(ValueError, match="does not match its hash"):
        load_baseline(lake, "fraud", "launch")


def test_a_training_set_without_scores_gives_a_baseline_of_its_columns(registry, lake, tmp_path):
    rng = np.random.default_rng(3)
    training = pa.table({"amount": rng.lognormal(3, 1, 500), "country": rng.choice(["US", "DE"], 500)})
    (tmp_path / "training").mkdir()
    pq.write_table(training, tmp_path / "training" / "part-0.parquet")

    baseline = freeze_baseline(lake, registry.model("fraud"), reference=tmp_path / "training")

    assert set(baseline.numeric) == {"amount"} and set(baseline.categorical) == {"country"}
    assert baseline.source == {"kind": "reference", "path": str(tmp_path / "training")}
    assert {r["column"]: r["rows"] for r in baseline.profile.to_pylist()} == {"amount": 500, "country": 500}
