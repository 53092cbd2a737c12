"""Lake paths are built only from validated names, and partitions are replaced atomically."""

import datetime as dt

import pyarrow as pa
import pytest

from closedloop.core.lake import Lake, LakeError
from closedloop.core.names import InvalidNameError, checked_day, checked_name


@pytest.mark.parametrize("name", ["..", "a/b", "a\\b", "", "1abc", "fraud.v2", "x" * 65, "ab c", None])
def test_names_that_could_escape_the_lake_are_refused(name):
    with pytest.raises(InvalidNameError):
        checked_name(name)


@pytest.mark.parametrize("key", ["2026-9-1", "../2026-09-01", "2026-02-30", "20260901", "2026-09-01T00:00"])
def test_partition_keys_must_be_plain_dates(key):
    with pytest.raises(InvalidNameError):
        checked_day(key)


def test_partition_keys_parse():
    assert checked_day("2026-09-01") == dt.date(2026, 9, 1)
    with pytest.raises(InvalidNameError):
        checked_day(dt.datetime(2026, 9, 1))


def test_paths_follow_the_layout(tmp_path):
    lake = Lake(root=tmp_path / "lake", landing=tmp_path / "landing")
    assert (
        lake.partition_path("fraud", "eval_stats", "2026-09-01")
        == tmp_path / "lake/fraud/eval_stats/date=2026-09-01/part.parquet"
    )
    assert (
        lake.quarantine_path("fraud", "labels", dt.date(2026, 9, 1))
        == tmp_path / "lake/fraud/quarantine/table=labels/date=2026-09-01/part.parquet"
    )
    assert lake.landing_dir("fraud", "labels", "2026-09-01") == tmp_path / "landing/fraud/labels/date=2026-09-01"
    with pytest.raises(InvalidNameError):
        lake.partition_path("../other", "predictions", "2026-09-01")
    with pytest.raises(LakeError, match="unknown table"):
        lake.partition_path("fraud", "../../etc", "2026-09-01")
    with pytest.raises(LakeError, match="unknown table"):
        lake.landing_dir("fraud", "outcomes", "2026-09-01")


def test_write_replaces_atomically_and_cleans_up_after_a_failure(tmp_path, monkeypatch):
    lake = Lake(root=tmp_path, landing=tmp_path)
    lake.write_partition("fraud", "predictions", "2026-09-01", pa.table({"x": [1, 2]}))
    path = lake.write_partition("fraud", "predictions", "2026-09-01", pa.table({"x": [3]}))
    assert lake.read_partition("fraud", "predictions", "2026-09-01").column("x").to_pylist() == [3]

    def broken_write(table, where, **kwargs):
        with open(where, "wb") as half:
            half.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr("closedloop.core.lake.pq.write_table", broken_write)
    with pytest.raises(LakeError, match=rf"cannot write lake file {path}: disk full; free space"):
        lake.write_partition("fraud", "predictions", "2026-09-01", pa.table({"x": [4]}))
    monkeypatch.undo()
    assert lake.read_partition("fraud", "predictions", "2026-09-01").column("x").to_pylist() == [3]
    assert [p.name for p in path.parent.iterdir()] == ["part.parquet"]


def test_partition_files_lists_a_date_range_in_order(tmp_path):
    lake = Lake(root=tmp_path, landing=tmp_path)
    for day in ["2026-09-03", "2026-09-01", "2026-09-02"]:
        lake.write_partition("fraud", "labels", day, pa.table({"x": [1]}))
    (tmp_path / "fraud/labels/date=garbage").mkdir()
    (tmp_path / "fraud/labels/date=2026-09-09").mkdir()  # a folder without a file is not a partition
    days = [p.parent.name for p in lake.partition_files("fraud", "labels", end="2026-09-02")]
    assert days == ["date=2026-09-01", "date=2026-09-02"]
    assert len(lake.partition_files("fraud", "labels", start="2026-09-02")) == 2
    assert lake.partition_files("fraud", "outcomes") == []
    assert lake.read_partition("fraud", "labels", "2026-09-30") is None
    assert lake.row_count(lake.partition_path("fraud", "labels", "2026-09-01")) == 1


def test_a_damaged_lake_file_is_named(tmp_path):
    lake = Lake(root=tmp_path, landing=tmp_path)
    path = lake.partition_path("fraud", "labels", "2026-09-01")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    with pytest.raises(LakeError, match=str(path)):
        lake.read_partition("fraud", "labels", "2026-09-01")
    with pytest.raises(LakeError, match=str(path)):
        lake.row_count(path)


def test_figures_and_documents_have_validated_paths(tmp_path):
    lake = Lake(root=tmp_path, landing=tmp_path)
    assert (
        lake.figure_path("fraud", "drift_heatmap", "2026-09-01")
        == tmp_path / "fraud/figures/drift_heatmap/date=2026-09-01.png"
    )
    assert lake.document_path("fraud", "baselines", "v3") == tmp_path / "fraud/baselines/v3.json"
    assert (
        lake.document_path("fraud", "validations", "predictions/2026-09-01")
        == tmp_path / "fraud/validations/predictions/2026-09-01.json"
    )
    for bad in ["../x", "a/b/c", "predictions/../../x", "2026-13-01"]:
        with pytest.raises((InvalidNameError, LakeError)):
            lake.document_path("fraud", "validations", bad)
    with pytest.raises(LakeError, match="unknown table"):
        lake.document_path("fraud", "secrets", "x")
    with pytest.raises(InvalidNameError):
        lake.figure_path("fraud", "../up", "2026-09-01")
    path = lake.write_file(lake.figure_path("fraud", "drift_heatmap", "2026-09-01"), b"png")
    assert path.read_bytes() == b"png" and [p.name for p in path.parent.iterdir()] == [path.name]


def test_read_range_stacks_partitions_in_date_order(tmp_path):
    lake = Lake(root=tmp_path, landing=tmp_path)
    for day, values in [("2026-09-03", [3]), ("2026-09-01", [1]), ("2026-09-02", [])]:
        lake.write_partition("fraud", "profiles", day, pa.table({"x": pa.array(values, pa.int64())}))
    assert lake.read_range("fraud", "profiles").column("x").to_pylist() == [1, 3]
    assert lake.read_range("fraud", "profiles", end="2026-09-02").column("x").to_pylist() == [1]
    assert lake.read_range("fraud", "profiles", "2026-09-02", "2026-09-02") is None
    schema = pa.schema([("x", pa.float64())])
    assert lake.read_range("fraud", "drift", schema=schema).schema == schema
    assert lake.read_range("fraud", "profiles", schema=schema).column("x").to_pylist() == [1.0, 3.0]


def test_landing_entries_no_day_reads_are_listed(tmp_path):
    lake = Lake(tmp_path / "lake", tmp_path / "landing")
    table = tmp_path / "landing" / "fraud" / "predictions"
    for name in ("date=2026-09-03", "date=2026-9-4", "2026-09-05", "date=2026-02-30", ".staging"):
        (table / name).mkdir(parents=True)
    (table / "part-0.parquet").write_bytes(b"dropped beside the day folders")
    stray = [p.name for p in lake.misnamed_landing("fraud", "predictions")]
    assert stray == ["2026-09-05", "date=2026-02-30", "date=2026-9-4", "part-0.parquet"]
    assert lake.misnamed_landing("fraud", "labels") == []  # nothing landed there at all
