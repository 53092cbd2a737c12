"""Hostile names and secrets: nothing a registry, a command or a landed file names can reach outside the
lake, and a webhook's URL (a secret) is written nowhere closedloop keeps things."""

import http.server
import json
import threading
from pathlib import Path

import pytest
import yaml

from closedloop.core.lake import Lake
from closedloop.core.names import InvalidNameError
from closedloop.core.specs import RegistryError
from closedloop.inputs.ingest import ingest_predictions
from closedloop.registry import load_registry
from closedloop.simulator import simulate
from orchestration import cli
from tests.helpers import TEST_REGISTRY, Recorder, day, fraud_rows, land

HOSTILE_NAMES = ["../outside", "a/b", "/etc", "..", "fraud/../../outside", "x" * 65, "v1; DROP TABLE x"]


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    """A lake under tmp_path/lake, the CLI pointed at it, and the folder a name escaping it would reach."""
    lake = Lake(tmp_path / "lake", tmp_path / "landing")
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(lake.root))
    monkeypatch.setenv("CLOSEDLOOP_LANDING", str(lake.landing))
    return lake, tmp_path / "outside"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_the_registry_refuses_a_model_or_version_name_that_is_not_a_plain_name(tmp_path, name):
    document = yaml.safe_load(TEST_REGISTRY.read_text())
    fraud = document["models"]["fraud"]
    as_model = {**document, "models": {**document["models"], name: fraud}}
    as_version = {**document, "models": {"fraud": {**fraud, "versions": {name: {"threshold": 0.5}}}}}
    for where, changed in (("model", as_model), ("version", as_version)):
        path = tmp_path / f"{where}.yaml"
        path.write_text(yaml.safe_dump(changed))
        with pytest.raises(RegistryError, match="is not a valid name"):
            load_registry(path)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--start", "2026-09-01", "--end", "2026-09-01", "--model", "{name}"],
        ["quarantine", "--model", "{name}"],
        ["metrics", "--model", "{name}", "--date", "2026-09-01"],
        ["metrics", "--model", "fraud", "--date", "{name}"],
        ["status", "--model", "{name}"],
        ["report", "--model", "{name}", "--date", "2026-09-01"],
        ["rollback", "--model", "fraud", "--to", "{name}"],
        ["compare", "--model", "fraud", "--baseline", "{name}", "--candidate", "v12"],
        ["ack", "{name}/slo/2026-09-01"],
        ["approve", "{name}", "--model", "fraud"],
        ["silence", "--model", "{name}", "--until", "2099-01-01T00:00", "--reason", "r"],
    ],
)
def test_every_command_refuses_a_hostile_name_in_one_line_and_writes_nothing_outside(hostile, capsys, argv, name):
    _, outside = hostile
    code = cli.main([part.replace("{name}", name) for part in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) <= 2 and "Traceback" not in err, err  # argparse adds a usage line
    assert not outside.exists()


@pytest.mark.parametrize("key", ["../2026-09-01", "2026-09-01/../../x", "/etc/passwd", "2026-13-01"])
def test_ingest_refuses_a_partition_key_that_is_not_a_day(hostile, key):
    lake, outside = hostile
    with pytest.raises(InvalidNameError):
        ingest_predictions(lake, load_registry(TEST_REGISTRY).model("fraud"), key)
    assert not outside.exists()


def test_hostile_values_in_a_landed_file_are_quarantined_never_used_as_names(hostile):
    lake, outside = hostile
    fraud = load_registry(TEST_REGISTRY, landing=str(lake.landing), lake=str(lake.root)).model("fraud")
    ids = ["ok", "../../outside", "'; DROP TABLE predictions; --", "x" * 100_000]
    versions = ["v11", "../../outside", "v11", "v11; DROP TABLE x"]
    land(lake, "fraud", "predictions", day(0), fraud_rows(day(0), ids, model_version=versions))
    result = ingest_predictions(lake, fraud, day(0))
    accepted = lake.read_partition("fraud", "predictions", day(0))
    assert sorted(accepted["prediction_id"].to_pylist()) == sorted([ids[0], ids[2]])  # SQL-looking ids are data
    assert result.quarantined == 2  # the unregistered versions, whatever they spell
    assert not outside.exists()
    assert sorted(p.relative_to(lake.root).parts[:2] for p in lake.root.rglob("*.parquet")) == sorted(
        [("fraud", "predictions"), ("fraud", "prediction_ids"), ("fraud", "quarantine")]
    )


TOKEN = "T0KEN-s3cr3t-planted"


@pytest.mark.slow
def test_the_webhook_url_appears_in_no_log_metadata_lake_file_or_report(tmp_path, monkeypatch, capsys):
    """A day whose p95 breaches its SLO (tightened to 1 ms here) opens an incident whose message fails on a
    webhook whose URL carries a token; the token is then searched for in everything closedloop wrote."""
    document = yaml.safe_load(TEST_REGISTRY.read_text())
    [p95] = [s for s in document["models"]["ticket_triage"]["slos"] if s["name"] == "p95_latency_ceiling"]
    p95["threshold"] = 1
    registry = tmp_path / "models.yaml"
    registry.write_text(yaml.safe_dump({**document, "landing": "landing", "lake": "lake"}))
    simulate(tmp_path / "landing", days=1, seed=5, fraud_rows_per_day=200, triage_rows_per_day=2_400)
    handler = type("Failing", (Recorder,), {"received": [], "status": 500})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/hooks/{TOKEN}?token={TOKEN}"
    for name in ("DAGSTER_HOME", "MPLCONFIGDIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOSEDLOOP_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("CLOSEDLOOP_CONFIG", str(registry))
    monkeypatch.setenv("CLOSEDLOOP_WEBHOOK_URL", url)
    try:
        code = cli.main(["run", "--start", day(0), "--end", day(0), "--model", "ticket_triage", "--json"])
        status = cli.main(["status", "--json"])
    finally:
        httpd.shutdown()
        httpd.server_close()
    out, err = capsys.readouterr()
    payload = json.loads(out.splitlines()[0])
    assert code == 1 and status == 0 and handler.received  # the incident was opened and its message tried
    [incident] = payload["incidents"]
    assert incident["notification"].startswith("opened: failed after 4 attempts: HTTP 500")
    leaks = [path for path in Path(tmp_path).rglob("*") if path.is_file() and TOKEN.encode() in path.read_bytes()]
    assert leaks == [] and TOKEN not in out + err
    assert (tmp_path / "lake" / "reports" / "ticket_triage" / f"{day(0)}.html").exists()
    assert any((tmp_path / "data" / "dagster_home").rglob("*.db"))  # the run's records were searched too
