"""In-memory DuckDB work shares one database per process: what each caller names must stay its own."""

import dagster as dg
import pyarrow as pa
import pytest

from closedloop.core.sql import connect
from closedloop.simulator import DEFAULT_START, simulate
from orchestration.runner import materialize_range


def test_a_connections_names_are_invisible_to_another_and_go_when_it_closes():
    with connect() as first, connect() as second:
        first.register("predictions", pa.table({"score": [0.1, 0.9]}))
        second.register("predictions", pa.table({"score": [0.5]}))
        first.execute("CREATE TEMP TABLE copies AS SELECT * FROM predictions")
        assert first.sql("SELECT count(*) FROM copies").fetchall() == [(2,)]
        assert second.sql("SELECT count(*) FROM predictions").fetchall() == [(1,)]
        assert not second.sql("SELECT * FROM duckdb_tables() WHERE table_name = 'copies'").fetchall()
    with connect() as later:
        assert not later.sql("SELECT * FROM duckdb_tables() WHERE table_name = 'copies'").fetchall()
        assert later.sql("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]


@pytest.mark.slow
def test_a_pipeline_run_leaves_nothing_in_the_shared_database(registry, tmp_path):
    simulate(registry.landing, days=2, seed=3, fraud_rows_per_day=300, triage_rows_per_day=200)
    [outcome] = materialize_range(registry, ["fraud"], DEFAULT_START, DEFAULT_START, dg.DagsterInstance.ephemeral())
    assert outcome.success
    with connect() as con:
        left = con.sql(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE NOT temporary AND NOT internal"
        ).fetchall()
    assert left == []
