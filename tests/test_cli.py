"""The command line: summaries as one JSON object, errors as one line, state kept out of home."""

import json
from pathlib import Path

import pyarrow as pa
import pytest

from closedloop.registry import DEFAULT_CONFIG, load_registry
from closedloop.simulator import simulate
from orchestration import cli
from orchestration.cli import pipeline
from tests.helpers import TEST_REGISTRY, day, fraud_rows, land


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("simulated") / "landing"
    simulate(root, days=3, seed=5, fraud_rows_per_day=200, triage_rows_per_day=100)
    return root


@pytest.fixture
def registry(landing, tmp_path):
    return load_registry(TEST_REGISTRY, landing=str(landing), lake=str(tmp_path / "lake"))


@pytest.fixture
def fresh_environment(monkeypatch, tmp_path):
    """No DAGSTER_HOME or matplotlib settings, restored afterwards whatever the CLI sets."""
    for name in ("DAGSTER_HOME", "MPLCONFIGDIR", "MPLBACKEND", "DAGSTER_DISABLE_TELEMETRY"):
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    monkeypatch.setenv("CLOSEDLOOP_DATA", str(tmp_path / "data"))


@pytest.mark.slow
def test_run_prints_one_json_summary(registry, capsys, monkeypatch, tmp_path, fresh_environment):
    monkeypatch.setenv("CLOSEDLOOP_LANDING", str(registry.landing))
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(registry.lake))
    code = cli.main(["run", "--start", day(0), "--end", day(1), "--model", "ticket_triage", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    payload = json.loads(out)
    counts = payload["ingest"]["ticket_triage"]["predictions"]
    assert counts["landed"] == counts["accepted"] + counts["quarantined"] + counts["duplicates"] > 0
    assert payload["warnings"] == []
    assert (tmp_path / "data" / "dagster_home" / "dagster.yaml").read_text().startswith("telemetry")


@pytest.mark.slow
def test_a_run_and_status_over_an_empty_landing_and_lake_say_where_they_looked(tmp_path, capsys, monkeypatch):
    """A registry copied elsewhere resolves its landing and lake next to the copy: finding nothing is said."""
    monkeypatch.setenv("CLOSEDLOOP_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(tmp_path / "lake"))
    assert cli.main(["status", "--model", "ticket_triage"]) == 0
    assert f"no SLO has been judged yet in the lake {tmp_path / 'lake'}" in capsys.readouterr().out
    where = tmp_path / "landing" / "ticket_triage" / "predictions"
    (where / "date=2026-9-1").mkdir(parents=True)  # not the day's folder: nothing reads it
    # With nothing landed in the baseline window there is no baseline to profile on: the run says so.
    assert cli.main(["run", "--start", day(0), "--end", day(0), "--model", "ticket_triage"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(f"nothing landed for ticket_triage from {day(0)} to {day(0)} in {where}")
    assert f"ticket_triage: {where / 'date=2026-9-1'} is in the landing zone but no day reads it" in captured.out
    line = captured.err.strip().splitlines()[-1]  # after the progress bar
    assert line.startswith("closedloop run: ticket_triage: ticket_triage__profiles: no rows to freeze the")
    assert "baseline from (the window 2026-09-01..2026-09-10)" in line and "land and ingest" in line


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["run", "--start", "2026-09-01", "--end", "2026-08-01"], "--end 2026-08-01 is before --start 2026-09-01"),
        (["run", "--start", "2025-01-01", "--end", "2025-01-02"], "before fraud's first partition 2026-09-01"),
        (["run", "--start", "2026-09-01", "--end", "2026-09-01", "--model", "spam"], "no model named 'spam'"),
        (
            ["--config", str(DEFAULT_CONFIG), "run", "--start", "2026-10-30", "--end", "2026-10-31"],
            "2026-10-31 is after fraud's last partition 2026-10-30 (models.fraud.end_date in",
        ),
        (
            ["--config", "/nonexistent/models.yaml", "run", "--start", "2026-09-01", "--end", "2026-09-01"],
            "registry file not found",
        ),
        (["--config", str(DEFAULT_CONFIG.parent), "status"], "is a folder; --config (or CLOSEDLOOP_CONFIG) names"),
        (
            ["--config", str(DEFAULT_CONFIG), "quarantine", "--model", "fraud", "--date", "2027-01-01"],
            "2027-01-01 is after fraud's last partition 2026-10-30",
        ),
        (
            ["--config", str(DEFAULT_CONFIG), "quarantine", "--model", "fraud", "--date", "2026-09-05"],
            "fraud has no ingested predictions for 2026-09-05",
        ),
    ],
)
def test_errors_are_one_line(argv, says, capsys, monkeypatch, tmp_path, fresh_environment):
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(tmp_path / "lake"))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1


def test_simulate_writes_the_landing_layout(tmp_path, capsys, fresh_environment):
    assert cli.main(["simulate", "--out", str(tmp_path / "out"), "--days", "2", "--seed", "3", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["days"] == 2 and payload["rows"]["fraud"]["predictions"] > 0
    assert sorted(p.name for p in (tmp_path / "out" / "fraud" / "predictions").iterdir()) == [
        "date=2026-09-01",
        "date=2026-09-02",
    ]


@pytest.mark.slow
def test_demo_simulates_runs_and_summarises(tmp_path, capsys, monkeypatch, fresh_environment):
    monkeypatch.setenv("CLOSEDLOOP_CONFIG", str(DEFAULT_CONFIG))  # the demo runs on the demo registry
    monkeypatch.setenv("CLOSEDLOOP_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(tmp_path / "lake"))
    assert cli.main(["demo", "--days", "3", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert (payload["start"], payload["end"]) == ("2026-09-01", "2026-09-03")
    assert all(run["success"] for run in payload["runs"]) and len(payload["runs"]) == 2
    fraud = payload["ingest"]["fraud"]["predictions"]
    assert fraud["landed"] == fraud["accepted"] + fraud["quarantined"] + fraud["duplicates"] > 50_000
    assert json.loads(Path(payload["incidents_truth"]).read_text())["days"] == 3
    assert (tmp_path / "data" / "dagster_home" / "dagster.yaml").exists()
    # The demo's last step writes each model's report of its last day and the calendar that links them.
    assert payload["reports_index"] == str(tmp_path / "lake" / "reports" / "index.html")
    assert (tmp_path / "lake" / "reports" / "fraud" / "2026-09-03.html").exists()
    [comparison] = payload["comparisons"]  # three days end before v12's canary: said, not a failure
    assert comparison["report"] is None and "v12 of fraud has served no requests yet" in comparison["summary"]
    assert cli.main(["sql", "select count(distinct date) as days from fraud_predictions", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == [[3]]


def test_a_failed_run_exits_non_zero_with_one_line(tmp_path, capsys, monkeypatch, fresh_environment):
    landing = tmp_path / "landing"
    simulate(landing, days=2, seed=5, fraud_rows_per_day=200, triage_rows_per_day=100)
    (landing / "ticket_triage" / "predictions" / "date=2026-09-02" / "part-00.parquet").write_bytes(b"garbage")
    monkeypatch.setenv("CLOSEDLOOP_LANDING", str(landing))
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(tmp_path / "lake"))
    code = cli.main(["run", "--start", "2026-09-01", "--end", "2026-09-02", "--model", "ticket_triage", "--json"])
    captured = capsys.readouterr()
    assert code == 1
    [line] = captured.err.strip().splitlines()
    assert line.startswith("closedloop run: ticket_triage: ticket_triage__predictions: ")
    assert "date=2026-09-02/part-00.parquet: cannot read this landing file as Parquet" in line
    counts = json.loads(captured.out)["ingest"]["ticket_triage"]["predictions"]
    # Each day is written atomically; the range stops at the first day that cannot be read.
    assert (counts["days_ingested"], counts["days_missing"]) == (1, 1)
    assert counts["landed"] == counts["accepted"] + counts["quarantined"] + counts["duplicates"] > 0


def test_the_run_summary_is_what_the_run_measured(tmp_path, capsys, monkeypatch, fresh_environment):
    from closedloop.core.lake import Lake

    lake = Lake(tmp_path / "own_lake", tmp_path / "own_landing")
    good = fraud_rows(day(0), [f"ok{i}" for i in range(20)])
    bad = fraud_rows(day(0), [f"bad{i}" for i in range(50)], score=[float("nan")] * 50)
    path = land(lake, "fraud", "predictions", day(0), pa.concat_tables([good, bad, good.slice(0, 5)]))
    monkeypatch.setenv("CLOSEDLOOP_LANDING", str(lake.landing))
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(lake.root))
    run = ["run", "--start", day(0), "--end", day(0), "--model", "fraud", "--json"]

    assert cli.main(run) == 1  # two thirds of the day quarantined: the blocking check stops the rest
    counts = json.loads(capsys.readouterr().out)["ingest"]["fraud"]["predictions"]
    assert {k: counts[k] for k in ("landed", "accepted", "quarantined", "duplicates")} == {
        "landed": 75,
        "accepted": 20,
        "quarantined": 50,
        "duplicates": 5,
    }
    assert counts["quarantine_reasons"] == {"score missing or NaN": 50} and counts["days_ingested"] == 1

    path.write_bytes(b"")  # the day's file emptied after it was ingested: the re-ingest fails, said in one line
    assert cli.main(run) == 1
    captured = capsys.readouterr()
    [line] = captured.err.strip().splitlines()
    assert line.startswith("closedloop run: fraud: fraud__predictions: ") and "cannot read this landing file" in line
    counts = json.loads(captured.out)["ingest"]["fraud"]["predictions"]
    assert (counts["days_ingested"], counts["days_missing"], counts["failed_day"]) == (0, 1, day(0))
    assert counts["landed"] == counts["accepted"] == 0


def test_quarantine_lists_counts_by_reason(registry, capsys, monkeypatch, tmp_path, fresh_environment):
    from closedloop.core.lake import Lake
    from closedloop.inputs.ingest import ingest_predictions

    lake = Lake(registry.lake, tmp_path / "own_landing")
    land(lake, "fraud", "predictions", day(1), fraud_rows(day(1), ["a", "b", "c"], score=[float("nan"), 1.5, 0.5]))
    ingest_predictions(lake, registry.model("fraud"), day(1))
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(registry.lake))
    assert cli.main(["quarantine", "--model", "fraud", "--date", day(1), "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert counts == [
        {"table": "predictions", "date": day(1), "reason": "score missing or NaN", "rows": 1},
        {"table": "predictions", "date": day(1), "reason": "score outside [0, 1]", "rows": 1},
    ]
    land(lake, "fraud", "predictions", day(2), fraud_rows(day(2), ["d"], score=[0.5]))
    ingest_predictions(lake, registry.model("fraud"), day(2))
    assert cli.main(["quarantine", "--model", "fraud", "--date", day(2)]) == 0
    assert "nothing quarantined for fraud on" in capsys.readouterr().out
    # A day nothing was ingested for is not a clean day.
    assert cli.main(["quarantine", "--model", "fraud", "--date", day(3)]) == 2
    assert f"fraud has no ingested predictions for {day(3)}" in capsys.readouterr().err


def test_failing_days_read_as_ranges():
    days = ("2026-09-21", "2026-09-13", "2026-09-14", "2026-09-15", "2026-09-23")
    assert pipeline._day_ranges(days) == "2026-09-13..2026-09-15, 2026-09-21, 2026-09-23"


def test_rollback_and_reject_from_the_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(tmp_path / "lake"))
    assert cli.main(["rollback", "--model", "fraud", "--who", "alice@example.com"]) == 0
    assert capsys.readouterr().out.startswith("fraud: v12 -> v11 (audit row act_")
    assert cli.main(["rollback", "--model", "fraud"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == "closedloop rollback: fraud v11 has no earlier version to roll back to"
    assert cli.main(["actions", "--model", "fraud", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)["actions"]
    assert (row["type"], row["state"], row["requested_by"]) == ("rollback", "applied", "alice@example.com")
    assert cli.main(["reject", row["action_id"]]) == 2
    assert "is applied, not pending" in capsys.readouterr().err


def test_the_kill_switch_is_turned_off_from_the_command_line_and_status_shows_what_is_served(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(tmp_path / "lake"))
    assert cli.main(["fallback", "on", "--model", "ticket_triage", "--who", "bob@example.com"]) == 0
    assert capsys.readouterr().out.startswith("ticket_triage: fallback on (audit row act_")
    assert cli.main(["status", "--model", "ticket_triage"]) == 0
    assert "ticket_triage  active v4  threshold 0.5  weights v4 100%  fallback ON" in capsys.readouterr().out
    assert cli.main(["fallback", "off", "--model", "ticket_triage", "--why", "the spike is over"]) == 0
    capsys.readouterr()
    assert cli.main(["serving", "--model", "ticket_triage", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["serving"]["ticket_triage"]["fallback"] is False
    assert cli.main(["actions", "--model", "ticket_triage", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["actions"]
    assert [(r["type"], json.loads(r["params"]), r["why"]) for r in rows] == [
        ("fallback", {"enabled": True}, "manual switch from the command line"),
        ("fallback", {"enabled": False}, "the spike is over"),
    ]
    assert rows[0]["requested_by"] == "bob@example.com"


def _failing_run():
    """A run in which an ERROR check failed (not blocking) on one asset and a later step raised."""
    import dagster as dg

    @dg.asset
    def drift():
        return 1

    @dg.asset_check(asset=drift, blocking=False)
    def inputs_ok():
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR, metadata={"first_failure": "x"})

    @dg.asset(deps=[drift])
    def slos():
        raise ValueError("the SLO step died")

    @dg.asset
    def gate():
        return 1

    @dg.asset_check(asset=gate, blocking=True)
    def gate_ok():
        return dg.AssetCheckResult(passed=False, metadata={"first_failure": "2026-09-14: 3 rows"})

    return dg.Definitions(assets=[drift, slos, gate], asset_checks=[inputs_ok, gate_ok])


def test_the_failure_reason_names_the_step_that_failed_before_any_failed_check():
    import dagster as dg

    from orchestration.runner import failure_reason

    job = _failing_run().resolve_implicit_global_asset_job_def()
    only_the_step = job.execute_in_process(
        raise_on_error=False, instance=dg.DagsterInstance.ephemeral(), asset_selection=[dg.AssetKey("drift"),
        dg.AssetKey("slos")]
    )  # fmt: skip
    assert failure_reason(only_the_step) == "slos: the SLO step died"
    # A blocking check that failed stopped the run where it failed: it is named with its detail.
    gated = job.execute_in_process(
        raise_on_error=False, instance=dg.DagsterInstance.ephemeral(), asset_selection=[dg.AssetKey("gate")]
    )
    assert failure_reason(gated) == "check gate:gate_ok failed on 2026-09-14: 3 rows"


# `closedloop sql` reads the lake and nothing else, and writes nothing


@pytest.fixture
def small_lake(tmp_path, monkeypatch):
    """A lake with one fraud predictions partition, and the environment that points the CLI at it."""
    import pyarrow as pa

    from closedloop.core.lake import Lake

    lake = Lake(tmp_path / "lake", tmp_path / "landing")
    written = lake.write_partition("fraud", "predictions", day(0), pa.table({"prediction_id": ["a", "b"]}))
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(lake.root))
    monkeypatch.setenv("CLOSEDLOOP_LANDING", str(lake.landing))
    return lake, written


def test_sql_reads_the_lakes_views(small_lake, capsys):
    assert cli.main(["sql", "select count(*) as n, min(date) as day from fraud_predictions", "--json"]) == 0
    [[count, first]] = json.loads(capsys.readouterr().out)["rows"]
    assert count == 2 and first.startswith("2026-09-01")


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("COPY (SELECT 1 AS prediction_id) TO '{partition}'", "Permission Error"),
        ("COPY (SELECT 1 AS a) TO '{folder}' (FORMAT parquet, OVERWRITE)", "Permission Error"),
        ("SELECT * FROM read_csv('/etc/passwd')", "Permission Error"),
        ("SELECT * FROM read_parquet('{partition}')", "Permission Error"),  # the lake is read through its views
        ("ATTACH '{lake}/writable.duckdb'", "Permission Error"),
        ("INSTALL httpfs", "Permission Error"),
        ("LOAD httpfs", "Permission Error"),
        ("SET enable_external_access = true", "the configuration has been locked"),
        ("SELECT * FROM small_lake", "does not exist"),  # no Python variable is reachable either
    ],
)
def test_sql_is_read_only_and_cannot_reach_outside_the_lake(small_lake, capsys, query, says):
    lake, partition = small_lake
    before = partition.read_bytes()
    sql = query.format(partition=partition, folder=partition.parent, lake=lake.root)
    assert cli.main(["sql", sql]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("closedloop sql: query failed: ") and says in err, err
    assert "read-only" in err
    assert partition.read_bytes() == before
    assert sorted(p.name for p in lake.root.rglob("*") if p.is_file()) == ["part.parquet"]


def test_several_sql_commands_at_once_all_answer(small_lake):
    import subprocess
    import sys

    closedloop = [sys.executable, "-c", "import sys; from orchestration.cli import main; sys.exit(main())"]
    command = [*closedloop, "sql", "select count(*) from fraud_predictions", "--json"]
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in "1234"]
    results = [(p.returncode, out, err) for p in running for out, err in [p.communicate()]]
    assert [(code, err.decode()) for code, _, err in results] == [(0, "")] * 4
    assert [json.loads(out)["rows"] for _, out, _ in results] == [[[2]]] * 4
