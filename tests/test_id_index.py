"""The prediction id index: each day's distinct ids, sorted, and the readers that probe it."""

import datetime as dt
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closedloop.core.lake import Lake
from closedloop.inputs import contract
from closedloop.inputs.contract import repeated_prediction_ids
from closedloop.inputs.id_index import ROW_GROUP_ROWS, index_days
from closedloop.inputs.ingest import ingest_labels, ingest_predictions
from tests.helpers import at, fraud_rows, label_rows, land

START = dt.date(2026, 9, 1)


def days(n: int) -> list[dt.date]:
    return [START + dt.timedelta(days=i) for i in range(n)]


def index_of(lake: Lake, day: dt.date) -> pa.Table:
    return pq.read_table(lake.partition_path("fraud", "prediction_ids", day))


def write_predictions(lake: Lake, day: dt.date, ids: list[str | None]) -> Path:
    """A predictions partition written as any writer of the lake would, without ingest (and its index)."""
    return lake.write_partition("fraud", "predictions", day, pa.table({"prediction_id": pa.array(ids, pa.string())}))


def test_the_index_holds_the_partitions_distinct_ids_sorted_in_row_groups(lake):
    ids = [f"id-{(i * 7919) % 70_000:05d}" for i in range(70_000)] + ["id-00001", None]  # shuffled, one twice, a null
    write_predictions(lake, START, ids)

    [index] = index_days(lake, "fraud")

    table = index_of(lake, START)
    assert table.column("prediction_id").to_pylist() == sorted({i for i in ids if i is not None})
    assert (index.ids, index.partition_rows, index.distinct) == (70_000, 70_002, False)
    assert (index.lowest, index.highest) == ("id-00000", "id-69999")
    metadata = pq.read_metadata(index.path)
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [ROW_GROUP_ROWS, 4_464]
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    assert metadata.row_group(0).column(0).statistics.max < metadata.row_group(1).column(0).statistics.min


def test_ingest_writes_the_days_index(registry, lake):
    land(lake, "fraud", "predictions", START.isoformat(), fraud_rows(START.isoformat(), ["c", "a", "b", "a"]))
    ingest_predictions(lake, registry.model("fraud"), START)
    assert index_of(lake, START).column("prediction_id").to_pylist() == ["a", "b", "c"]


def test_re_materializing_a_day_replaces_its_index(registry, lake):
    fraud, key = registry.model("fraud"), START.isoformat()
    land(lake, "fraud", "predictions", key, fraud_rows(key, ["a", "b"]))
    ingest_predictions(lake, fraud, START)
    land(lake, "fraud", "predictions", key, fraud_rows(key, ["c", "d"]))
    ingest_predictions(lake, fraud, START)
    assert index_of(lake, START).column("prediction_id").to_pylist() == ["c", "d"]

    write_predictions(lake, START, ["e"])  # rewritten by something other than ingest: the index is stale
    assert [i.ids for i in index_days(lake, "fraud")] == [1]
    assert index_of(lake, START).column("prediction_id").to_pylist() == ["e"]


def test_an_index_older_than_its_partition_is_built_again(lake):
    partition = write_predictions(lake, START, ["a"])
    [index] = index_days(lake, "fraud")
    old = os.stat(partition).st_mtime_ns - 1_000_000_000
    os.utime(index.path, ns=(old, old))
    [again] = index_days(lake, "fraud")
    assert os.stat(again.path).st_mtime_ns >= os.stat(partition).st_mtime_ns


def test_a_missing_or_damaged_index_is_built_on_demand(registry, lake):
    fraud = registry.model("fraud")
    write_predictions(lake, START, ["a", "b"])
    write_predictions(lake, START + dt.timedelta(days=1), ["b", "c"])
    assert repeated_prediction_ids(lake, fraud, days(2)) == {START: 1, START + dt.timedelta(days=1): 1}
    path = lake.partition_path("fraud", "prediction_ids", START)
    path.unlink()
    assert repeated_prediction_ids(lake, fraud, [START]) == {START: 1}
    assert path.exists()
    path.write_bytes(b"not parquet")
    assert repeated_prediction_ids(lake, fraud, [START]) == {START: 1}
    assert index_of(lake, START).column("prediction_id").to_pylist() == ["a", "b"]


def reference_repeats(by_day: dict[dt.date, list[str | None]], asked: list[dt.date]) -> dict[dt.date, int]:
    """The plain full read: per asked day, its rows whose id another day's partition also has."""
    sets = {day: {i for i in ids if i is not None} for day, ids in by_day.items()}
    counts = dict.fromkeys(asked, 0)
    for day in counts:
        elsewhere = set().union(*(s for other, s in sets.items() if other != day))
        counts[day] = sum(1 for i in by_day.get(day, []) if i is not None and i in elsewhere)
    return counts


# Ids that sort apart by day (like the simulator's), ids shared between days, and long ids that
# differ only after a long common prefix (footer statistics of long strings must still bound them).
ids_of_day = st.lists(
    st.one_of(
        st.sampled_from(["a", "b", "c", "x" * 80 + "1", "x" * 80 + "2", None]),
        st.integers(0, 30).map(lambda i: f"k{i:02d}"),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    partitions=st.dictionaries(st.integers(0, 5), ids_of_day, max_size=5),
    asked=st.lists(st.integers(0, 6), min_size=1, max_size=7),
)
def test_repeated_ids_through_the_index_match_a_full_read(registry, partitions, asked):
    fraud = registry.model("fraud")
    with tempfile.TemporaryDirectory() as root:
        lake = Lake(Path(root) / "lake", Path(root) / "landing")
        by_day = {START + dt.timedelta(days=offset): ids for offset, ids in partitions.items()}
        for day, ids in by_day.items():
            write_predictions(lake, day, ids)
        asked_days = [START + dt.timedelta(days=offset) for offset in asked]
        assert repeated_prediction_ids(lake, fraud, asked_days) == reference_repeats(by_day, asked_days)


def test_a_day_probes_only_the_days_whose_ids_can_overlap_its_own(registry, lake, monkeypatch):
    fraud = registry.model("fraud")
    for day in days(4):  # ids that sort apart by day, like the simulator's
        write_predictions(lake, day, [f"fraud-{day:%Y%m%d}-{i:06d}" for i in range(5)])
    last = days(4)[-1]
    probed = []
    real = contract.ids_between

    def spy(con, indexes, bounds):
        probed.append([index.day for index in indexes if index.may_hold(*bounds)])
        return real(con, indexes, bounds)

    monkeypatch.setattr(contract, "ids_between", spy)
    assert repeated_prediction_ids(lake, fraud, [last]) == {last: 0}
    assert probed == []  # the other days' footers say none of them can hold its ids
    write_predictions(lake, days(4)[1], ["a", f"fraud-{last:%Y%m%d}-000003"])  # a day whose ids do reach it
    assert repeated_prediction_ids(lake, fraud, [last]) == {last: 1}
    assert probed == [[days(4)[1]]]


def test_labels_for_predictions_of_earlier_days_still_join(registry, lake):
    fraud = registry.model("fraud")
    for offset, ids in enumerate([["p1", "p2"], ["q1"], ["r1", "r2"]]):
        key = (START + dt.timedelta(days=offset)).isoformat()
        land(lake, "fraud", "predictions", key, fraud_rows(key, ids, model_version=["v11", "v12"][: len(ids)]))
        ingest_predictions(lake, fraud, key)
    lake.partition_path("fraud", "prediction_ids", START).unlink()  # built again when the labels need it
    arrival = (START + dt.timedelta(days=5)).isoformat()
    land(lake, "fraud", "labels", arrival, label_rows(["r2", "p1", "zz"], [1, 0, 1], at(arrival, 9)))

    result = ingest_labels(lake, fraud, arrival)

    labels = lake.read_partition("fraud", "labels", arrival).to_pylist()
    joined = {row["prediction_id"]: (row["model_version"], row["prediction_ts"]) for row in labels}
    predictions = lake.read_range("fraud", "predictions").to_pylist()
    ts = {row["prediction_id"]: row["ts"] for row in predictions}
    assert joined == {"p1": ("v11", ts["p1"]), "r2": ("v12", ts["r2"]), "zz": (None, None)}
    assert (result.accepted, result.unknown_predictions) == (3, 1)
    assert lake.partition_path("fraud", "prediction_ids", START).exists()


def test_an_id_of_an_earlier_day_is_quarantined_with_its_index_missing(registry, lake):
    fraud = registry.model("fraud")
    write_predictions(lake, START, ["a", "b"])  # no index yet
    key = (START + dt.timedelta(days=1)).isoformat()
    land(lake, "fraud", "predictions", key, fraud_rows(key, ["b", "c"]))
    result = ingest_predictions(lake, fraud, key)
    assert result.quarantine_reasons == {"prediction_id already accepted on an earlier day": 1}
    assert index_of(lake, START + dt.timedelta(days=1)).column("prediction_id").to_pylist() == ["c"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(landed=st.lists(st.lists(st.integers(0, 15).map(lambda i: f"id{i:02d}"), max_size=6), min_size=1, max_size=4))
def test_ingest_keeps_an_id_on_the_earliest_day_like_a_full_read(registry, landed):
    fraud = registry.model("fraud")
    with tempfile.TemporaryDirectory() as root:
        lake = Lake(Path(root) / "lake", Path(root) / "landing")
        seen: set[str] = set()
        for offset, ids in enumerate(landed):
            key = (START + dt.timedelta(days=offset)).isoformat()
            land(lake, "fraud", "predictions", key, fraud_rows(key, ids))
            ingest_predictions(lake, fraud, key)
            accepted = set(lake.read_partition("fraud", "predictions", key).column("prediction_id").to_pylist())
            assert accepted == set(ids) - seen
            seen |= accepted


def test_ids_too_long_for_footer_statistics_are_still_bounded(registry, lake):
    long_a, long_b = "a" * 5_000, "b" * 5_000  # Parquet writers keep no min/max for values this long
    write_predictions(lake, START, [long_b, long_a])
    write_predictions(lake, START + dt.timedelta(days=1), [long_a + "z"])
    write_predictions(lake, START + dt.timedelta(days=2), [long_b])
    [first, *_] = index_days(lake, "fraud")
    assert (first.lowest, first.highest) == (long_a, long_b)
    assert repeated_prediction_ids(lake, registry.model("fraud"), days(3)) == dict(zip(days(3), [1, 0, 1], strict=True))
