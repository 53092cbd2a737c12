"""Ingest: every landed row is accepted, quarantined with a reason, or counted as an exact duplicate."""

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closedloop.inputs.contract import ContractError
from closedloop.inputs.ingest import ingest_labels, ingest_predictions
from tests.helpers import at, fraud_rows, label_rows, land

DAY = "2026-09-03"


def read(lake, model, table, day=DAY):
    return pq.read_table(lake.partition_path(model, table, day)).to_pandas()


def quarantine(lake, model, table, day=DAY):
    return pq.read_table(lake.quarantine_path(model, table, day)).to_pandas()


def test_bad_rows_are_quarantined_with_their_reason(registry, lake):
    fraud = registry.model("fraud")
    ids = [f"p{i}" for i in range(12)]
    score = [0.1, 0.2, float("nan"), 1.5, -0.1, float("inf"), 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    ts = [at(DAY, 3)] * 12
    ts[6] = at("2026-09-02", 23, 59)
    ts[7] = None
    versions = ["v11"] * 12
    versions[8] = "v99"
    ids[9] = None
    land(
        lake,
        "fraud",
        "predictions",
        DAY,
        fraud_rows(DAY, ids, score=score, ts=pa.array(ts, pa.timestamp("us", tz="UTC")), model_version=versions),
    )

    result = ingest_predictions(lake, fraud, DAY)

    assert result.landing_rows == 12
    assert result.accepted == 4
    assert result.quarantine_reasons == {
        "score missing or NaN": 1,
        "score outside [0, 1]": 3,
        "missing prediction_id": 1,
        "missing ts": 1,
        "model_version not in the registry": 1,
        "ts outside the partition day": 1,
    }
    held = quarantine(lake, "fraud", "predictions")
    assert len(held) == 8
    assert set(read(lake, "fraud", "predictions").prediction_id) == {"p0", "p1", "p10", "p11"}
    outside = held[held.reason == "ts outside the partition day"].iloc[0]
    assert outside.prediction_id == "p6" and outside.source_row == 6
    assert outside.source_file == "fraud/predictions/date=2026-09-03/part-00.parquet"
    assert '"prediction_id":"p6"' in outside.original and '"amount":16.0' in outside.original


def test_duplicates_across_files_are_dropped_and_conflicts_quarantined(registry, lake):
    fraud = registry.model("fraud")
    first = fraud_rows(DAY, ["a", "b", "c"])
    land(lake, "fraud", "predictions", DAY, first, "part-00.parquet")
    retried = fraud_rows(DAY, ["a", "b", "c"], score=[0.05, 0.15, 0.99])  # a is identical, b and c changed score
    land(lake, "fraud", "predictions", DAY, retried, "part-01.parquet")
    land(lake, "fraud", "predictions", DAY, first.slice(0, 1), "part-02.parquet")  # a third copy of a

    result = ingest_predictions(lake, fraud, DAY)

    assert (result.landing_rows, result.accepted, result.duplicates_dropped, result.quarantined) == (7, 3, 2, 2)
    assert result.quarantine_reasons == {"duplicate prediction_id with different values": 2}
    accepted = read(lake, "fraud", "predictions").set_index("prediction_id")
    assert accepted.loc["c", "score"] == pytest.approx(first.column("score")[2].as_py())  # first file wins
    assert set(quarantine(lake, "fraud", "predictions").source_file) == {
        "fraud/predictions/date=2026-09-03/part-01.parquet"
    }


def test_decision_comes_from_the_versions_threshold_unless_logged(registry, lake):
    fraud = registry.model("fraud")
    land(lake, "fraud", "predictions", DAY, fraud_rows(DAY, ["lo", "hi", "edge"], score=[0.2, 0.9, 0.5]))
    ingest_predictions(lake, fraud, DAY)
    decisions = read(lake, "fraud", "predictions").set_index("prediction_id").decision
    assert decisions.to_dict() == {"lo": 0, "hi": 1, "edge": 1}

    logged = fraud_rows(DAY, ["lo", "hi", "bad"], score=[0.2, 0.9, 0.3], decision=pa.array([1, None, 2], pa.int64()))
    land(lake, "fraud", "predictions", DAY, logged)
    result = ingest_predictions(lake, fraud, DAY)
    decisions = read(lake, "fraud", "predictions").set_index("prediction_id").decision
    assert decisions.to_dict() == {"lo": 1, "hi": 1}
    assert result.quarantine_reasons == {"decision not 0 or 1": 1}


def test_column_mapping_reads_a_log_with_its_own_names(registry, lake):
    triage = registry.model("ticket_triage")
    n = 3
    land(
        lake,
        "ticket_triage",
        "predictions",
        DAY,
        {
            "request_id": ["t1", "t2", "t3"],
            "model_version": ["v3"] * n,
            "created_at": pa.array([at(DAY, 9)] * n, pa.timestamp("ms", tz="Europe/Berlin")),
            "p_urgent": [0.1, 0.7, 0.65],
            "decision": pa.array([0, 1, 0], pa.int8()),
            "route": ["llm_large", "llm_small", "rules"],
            "latency_ms": [1200.0, 400.0, 5.0],
            "cost_usd": [0.004, 0.0008, 0.0],
            "is_fallback": [False, False, True],
            "error": [None, None, "timeout"],
            "ticket_tokens": [120, 80, 300],
            "customer_tenure_days": [10, 400, 20],
            "prior_tickets_30d": [0, 2, 1],
            "product": ["billing", "api", "billing"],
            "language": ["en", "de", "fr"],
            "plan_tier": ["free", "pro", "enterprise"],
            "channel": ["email", "chat", "phone"],
            "sentiment": [0.1, -0.5, 0.0],
        },
    )
    result = ingest_predictions(lake, triage, DAY)
    assert result.accepted == 3
    table = pq.read_table(lake.partition_path("ticket_triage", "predictions", DAY))
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("ticket_tokens").type == pa.float64()
    assert "sentiment" in table.column_names  # an unregistered column is kept
    assert table.column("decision").to_pylist() == [0, 1, 0]  # logged decision wins over the threshold

    land(
        lake,
        "ticket_triage",
        "labels",
        "2026-09-04",
        label_rows(
            ["t1", "t2", "ghost"],
            [0, 1, 1],
            at("2026-09-04", 8),
            prediction_id="request_id",
            label="is_urgent",
            label_ts="reviewed_at",
        ),
    )
    labels = ingest_labels(lake, triage, "2026-09-04")
    assert (labels.accepted, labels.unknown_predictions) == (3, 1)
    joined = read(lake, "ticket_triage", "labels", "2026-09-04").set_index("prediction_id")
    assert joined.loc["t2", "model_version"] == "v3"
    assert joined.loc["t2", "prediction_ts"] == at(DAY, 9)
    assert joined.loc["ghost"].isna()["model_version"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop_columns(["score"]), "missing required column(s) 'score'"),
        (lambda t: t.drop_columns(["merchant_id"]), "remove it from models.fraud.features or .segments"),
        (
            lambda t: t.rename_columns(["id" if c == "prediction_id" else c for c in t.column_names]),
            "map the new names under models.fraud.columns",
        ),
        (
            lambda t: t.set_column(t.schema.get_field_index("ts"), "ts", t.column("ts").cast(pa.timestamp("us"))),
            "without a time zone",
        ),
        (
            lambda t: t.set_column(t.schema.get_field_index("amount"), "amount", pa.array(["ten"] * t.num_rows)),
            "column 'amount' has type string and does not convert to double",
        ),
        (
            lambda t: t.set_column(t.schema.get_field_index("amount"), "amount", pa.array(["ten"] * t.num_rows)),
            "declare the column under the kind it now has in models.fraud.features",
        ),
        (
            lambda t: t.set_column(t.schema.get_field_index("ts"), "ts", pa.array(["2026-09-03"] * t.num_rows)),
            "expected a timestamp with a time zone",
        ),
    ],
)
def test_a_file_that_breaks_the_schema_fails_the_partition_with_a_clear_message(registry, lake, change, message):
    fraud = registry.model("fraud")
    land(lake, "fraud", "predictions", DAY, fraud_rows(DAY, ["a", "b"]), "part-00.parquet")
    ingest_predictions(lake, fraud, DAY)
    before = lake.partition_path("fraud", "predictions", DAY).read_bytes()
    bad = land(lake, "fraud", "predictions", DAY, change(fraud_rows(DAY, ["c"])), "part-01.parquet")
    with pytest.raises(ContractError) as caught:
        ingest_predictions(lake, fraud, DAY)
    assert str(bad) in str(caught.value)
    assert f"fraud/predictions partition {DAY}" in str(caught.value)
    assert message in str(caught.value)
    assert lake.partition_path("fraud", "predictions", DAY).read_bytes() == before  # nothing half-written


def test_unreadable_landing_file_is_named(registry, lake):
    folder = lake.landing_dir("fraud", "predictions", DAY)
    folder.mkdir(parents=True)
    (folder / "part-00.parquet").write_bytes(b"PAR1 this is not parquet")
    (folder / "part-01.parquet").write_bytes(b"")
    with pytest.raises(ContractError, match=r"part-00\.parquet: cannot read this landing file as Parquet"):
        ingest_predictions(lake, registry.model("fraud"), DAY)


def test_reingest_replaces_the_partition_and_is_byte_identical(registry, lake):
    fraud = registry.model("fraud")
    land(lake, "fraud", "predictions", DAY, fraud_rows(DAY, ["a", "b"]), "part-00.parquet")
    ingest_predictions(lake, fraud, DAY)
    path = lake.partition_path("fraud", "predictions", DAY)
    first = path.read_bytes()
    ingest_predictions(lake, fraud, DAY)
    assert path.read_bytes() == first

    land(lake, "fraud", "predictions", DAY, fraud_rows(DAY, ["c", "d", "e"]), "part-01.parquet")
    result = ingest_predictions(lake, fraud, DAY)
    assert result.accepted == 5
    assert sorted(read(lake, "fraud", "predictions").prediction_id) == ["a", "b", "c", "d", "e"]
    assert [p.name for p in path.parent.iterdir()] == ["part.parquet"]  # no temporary files left


def test_a_day_with_nothing_landed_still_gets_typed_empty_partitions(registry, lake):
    fraud = registry.model("fraud")
    assert ingest_predictions(lake, fraud, DAY).landing_rows == 0
    assert ingest_labels(lake, fraud, DAY).landing_rows == 0
    predictions = pq.read_table(lake.partition_path("fraud", "predictions", DAY))
    assert predictions.num_rows == 0 and predictions.schema.field("score").type == pa.float64()
    assert "merchant_id" in predictions.column_names
    labels = pq.read_table(lake.partition_path("fraud", "labels", DAY))
    assert labels.num_rows == 0 and labels.column_names == [
        "prediction_id",
        "label",
        "label_ts",
        "model_version",
        "prediction_ts",
    ]
    assert lake.quarantine_path("fraud", "labels", DAY).exists()


def test_labels_are_checked_deduplicated_and_joined(registry, lake):
    fraud = registry.model("fraud")
    land(lake, "fraud", "predictions", "2026-09-01", fraud_rows("2026-09-01", ["a", "b", "c"]))
    ingest_predictions(lake, fraud, "2026-09-01")
    arrival = "2026-09-20"
    rows = pa.concat_tables(
        [
            label_rows(["a", "a", "b", "c", "c", "x"], [1, 1, 0, 2, 1, 0], at(arrival, 5)),
            label_rows(["b"], [1], at(arrival, 9)),  # a correction later the same day
            label_rows(["late"], [1], at("2026-09-21", 0)),
        ]
    )
    land(lake, "fraud", "labels", arrival, rows)

    result = ingest_labels(lake, fraud, arrival)

    assert (result.landing_rows, result.accepted, result.duplicates_dropped, result.quarantined) == (8, 4, 1, 3)
    assert result.quarantine_reasons == {
        "conflicting label for the same prediction_id (a later one was kept)": 1,
        "label not 0 or 1": 1,
        "label_ts outside the arrival day": 1,
    }
    assert result.unknown_predictions == 1
    labels = read(lake, "fraud", "labels", arrival).set_index("prediction_id")
    assert labels.label.to_dict() == {"a": 1, "b": 1, "c": 1, "x": 0}
    assert labels.loc["a", "model_version"] == "v11"


bad_scores = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1.0, 0.5, -0.0]), st.none()
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(st.none(), st.sampled_from(["", " ", "a", "b", "c", "d"])),
            st.sampled_from(["v11", "v12", "v7", None]),
            st.one_of(st.none(), st.integers(-30, 30 + 24 * 60)),
            bad_scores,
        ),
        max_size=40,
    ),
    copies=st.integers(0, 3),
)
def test_nothing_is_ever_lost(registry, lake, rows, copies):
    fraud = registry.model("fraud")
    ids = [r[0] for r in rows]
    start = at(DAY, 0)
    ts = [None if r[2] is None else start + dt.timedelta(minutes=r[2]) for r in rows]
    table = fraud_rows(
        DAY,
        ids,
        model_version=pa.array([r[1] for r in rows], pa.string()),
        ts=pa.array(ts, pa.timestamp("us", tz="UTC")),
        score=pa.array([r[3] for r in rows], pa.float64()),
    )
    land(lake, "fraud", "predictions", DAY, table, "part-00.parquet")
    land(lake, "fraud", "predictions", DAY, table.slice(0, copies), "part-01.parquet")

    result = ingest_predictions(lake, fraud, DAY)

    accepted = read(lake, "fraud", "predictions")
    held = quarantine(lake, "fraud", "predictions")
    assert len(accepted) == result.accepted and len(held) == result.quarantined
    assert result.accepted + result.quarantined + result.duplicates_dropped == len(rows) + min(copies, len(rows))
    assert accepted.prediction_id.is_unique
    assert accepted.score.between(0, 1).all()
    assert held.reason.notna().all()


def test_an_id_accepted_on_an_earlier_day_is_quarantined_later(registry, lake):
    fraud = registry.model("fraud")
    land(lake, "fraud", "predictions", "2026-09-02", fraud_rows("2026-09-02", ["a", "b"]))
    ingest_predictions(lake, fraud, "2026-09-02")
    land(lake, "fraud", "predictions", DAY, fraud_rows(DAY, ["b", "c"]))
    result = ingest_predictions(lake, fraud, DAY)
    assert (result.accepted, result.quarantined) == (1, 1)
    assert result.quarantine_reasons == {"prediction_id already accepted on an earlier day": 1}
    assert list(read(lake, "fraud", "predictions").prediction_id) == ["c"]


def test_a_label_timestamped_before_its_prediction_is_quarantined(registry, lake):
    fraud = registry.model("fraud")
    land(
        lake,
        "fraud",
        "predictions",
        DAY,
        fraud_rows(DAY, ["a", "b"], ts=pa.array([at(DAY, 20), at(DAY, 1)], pa.timestamp("us", tz="UTC"))),
    )
    ingest_predictions(lake, fraud, DAY)
    land(lake, "fraud", "labels", DAY, label_rows(["a", "b"], [1, 0], at(DAY, 10)))
    result = ingest_labels(lake, fraud, DAY)
    assert result.quarantine_reasons == {"label_ts before the prediction's ts": 1}
    assert list(read(lake, "fraud", "labels").prediction_id) == ["b"]
    assert quarantine(lake, "fraud", "labels").prediction_id.tolist() == ["a"]


def test_a_file_with_no_rows_is_fine_but_an_empty_file_is_named(registry, lake):
    fraud = registry.model("fraud")
    land(lake, "fraud", "predictions", DAY, fraud_rows(DAY, ["a"]), "part-00.parquet")
    land(lake, "fraud", "predictions", DAY, fraud_rows(DAY, []), "part-01.parquet")
    assert ingest_predictions(lake, fraud, DAY).accepted == 1
    (lake.landing_dir("fraud", "predictions", DAY) / "part-02.parquet").write_bytes(b"")
    with pytest.raises(ContractError, match=r"part-02\.parquet: cannot read this landing file as Parquet"):
        ingest_predictions(lake, fraud, DAY)


column_damage = st.sampled_from(["drop", "strings", "nulls", "rename", "naive", "keep"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    damage=st.dictionaries(
        st.sampled_from(["prediction_id", "ts", "score", "model_version", "amount", "payment_type", "decision"]),
        column_damage,
        max_size=3,
    ),
    n=st.integers(0, 12),
)
def test_malformed_files_are_refused_clearly_or_ingested_without_loss(registry, lake, damage, n):
    fraud = registry.model("fraud")
    table = fraud_rows(DAY, [f"id{i % 5}" for i in range(n)], decision=pa.array([i % 3 for i in range(n)], pa.int64()))
    for column, how in damage.items():
        index = table.schema.get_field_index(column)
        if how == "drop":
            table = table.remove_column(index)
        elif how == "strings":
            table = table.set_column(index, column, pa.array([f"x{i}" for i in range(n)], pa.string()))
        elif how == "nulls":
            table = table.set_column(index, column, pa.nulls(n, table.schema.field(column).type))
        elif how == "rename":
            table = table.rename_columns([f"{c}_v2" if c == column else c for c in table.column_names])
        elif how == "naive" and pa.types.is_timestamp(table.schema.field(column).type):
            table = table.set_column(index, column, table.column(column).cast(pa.timestamp("us")))
    path = land(lake, "fraud", "predictions", DAY, table)
    try:
        result = ingest_predictions(lake, fraud, DAY)
    except ContractError as error:
        assert str(path) in str(error) and "models.fraud" in str(error) or "time zone" in str(error)
        return
    assert result.accepted + result.quarantined + result.duplicates_dropped == n
    assert len(read(lake, "fraud", "predictions")) == result.accepted


# Landed names that closedloop's own ingest columns, its SQL or a declared column could be confused
# with, and types DuckDB does not carry as they are: each is kept under its name and type.
UNDECLARED = {
    "_source_file": pa.array(["x", "y", "x"]),
    "_source_row": pa.array([7, 7, 8]),
    "_copy": pa.array([2, 2, 1]),
    "_status": pa.array(["quarantined"] * 3),
    "_reason": pa.array(["r", "r", None]),
    "_same_id": pa.array(["x", "x", "z"]),
    "_claim": pa.array(["9", "9", "9"]),
    "_threshold": pa.array(["high", "high", "low"]),
    "Amount": pa.array([1.5, 1.5, 3.0]),
    "SCORE": pa.array(["s", "s", "t"]),
    "half": pa.array([0.5, 0.5, 2.0], pa.float16()),
    "wait": pa.array([5, 5, 9], pa.duration("s")),
    "wide_decimal": pa.array([1, 1, 2], pa.int64()).cast(pa.decimal256(40, 2)),
}


@pytest.mark.parametrize("name", UNDECLARED)
def test_an_undeclared_column_is_kept_whatever_its_name_or_type(registry, lake, name):
    fraud = registry.model("fraud")
    landed = fraud_rows(DAY, ["a", "b"]).append_column(name, UNDECLARED[name].slice(0, 2))
    land(lake, "fraud", "predictions", DAY, landed, "part-00.parquet")
    retried = pa.concat_tables([landed.slice(0, 1), fraud_rows(DAY, ["b"]).append_column(name, UNDECLARED[name][2:])])
    land(lake, "fraud", "predictions", DAY, retried, "part-01.parquet")  # a's exact copy; b with other values

    result = ingest_predictions(lake, fraud, DAY)

    assert (result.accepted, result.duplicates_dropped, result.quarantined) == (2, 1, 1)
    accepted = pq.read_table(lake.partition_path("fraud", "predictions", DAY))
    assert accepted.schema.field(name).type == UNDECLARED[name].type
    assert accepted.column(name).to_pylist() == UNDECLARED[name][:2].to_pylist()
    assert accepted.column("amount").to_pylist() == landed.column("amount").to_pylist()
    [original] = quarantine(lake, "fraud", "predictions").original
    assert f'"{name}":' in original and '"prediction_id":"b"' in original


@pytest.mark.parametrize("name", ["_copy", "_reason", "_claim", "Label", "Model_Version"])
def test_an_undeclared_column_of_a_label_file_is_kept(registry, lake, name):
    fraud = registry.model("fraud")
    land(lake, "fraud", "predictions", DAY, fraud_rows(DAY, ["a", "b"]))
    ingest_predictions(lake, fraud, DAY)
    landed = label_rows(["a", "a", "b"], [1, 1, 0], at(DAY, 23)).append_column(name, pa.array(["u", "u", "w"]))
    land(lake, "fraud", "labels", DAY, landed)

    if name == "Model_Version":
        with pytest.raises(ContractError, match=r"carries \['Model_Version'\], which closedloop joins"):
            ingest_labels(lake, fraud, DAY)
        return
    result = ingest_labels(lake, fraud, DAY)

    assert (result.accepted, result.duplicates_dropped) == (2, 1)
    accepted = pq.read_table(lake.partition_path("fraud", "labels", DAY))
    assert accepted.column(name).to_pylist() == ["u", "w"]
    assert accepted.column("model_version").to_pylist() == ["v11", "v11"]


def test_an_undeclared_column_closedloop_cannot_carry_is_named(registry, lake):
    fraud = registry.model("fraud")
    halves = pa.array([[0.5], [1.0]], pa.list_(pa.float16()))
    land(lake, "fraud", "predictions", DAY, fraud_rows(DAY, ["a", "b"]).append_column("halves", halves))
    with pytest.raises(ContractError, match=r"column 'halves' \(not declared in the registry\) has type list<"):
        ingest_predictions(lake, fraud, DAY)
