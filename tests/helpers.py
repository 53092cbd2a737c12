"""Helpers shared by the test modules: the tests' own registry, landing files, hand-made tables.

Test modules import from here (conftest.py holds only fixtures); no test module imports another.
"""

import datetime as dt
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from closedloop.control.slo import SLO_EVALUATIONS_SCHEMA, record_evaluations
from closedloop.core.lake import Lake
from closedloop.drift.baseline import Baseline, CategoricalBaseline, NumericBaseline
from closedloop.drift.profiles import MERGED_SCHEMA
from closedloop.evaluation.eval_stats import eval_stats, score_counts
from closedloop.evaluation.outcomes import outcomes_schema
from closedloop.evaluation.score_bins import ScoreCounts
from closedloop.registry import load_registry
from closedloop.simulator import DEFAULT_START
from wiring.resources import WebhookResource

UTC = dt.UTC

# The tests' registry: a copy of the demo's config/models.yaml, so that tuning the demo changes no
# test's verdict. Only the tests about the demo registry itself read config/models.yaml.
TEST_REGISTRY = Path(__file__).resolve().parent / "registry" / "models.yaml"


# --- simulated days and landing files ----------------------------------------------------------


def day(offset: int) -> str:
    """The simulator's day ``offset`` as a partition key."""
    return (DEFAULT_START + dt.timedelta(days=offset)).isoformat()


def at(day: str, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, minute), tzinfo=UTC)


def land(lake: Lake, model: str, table: str, day: str, rows: dict | pa.Table, name: str = "part-00.parquet") -> Path:
    """Write one landing file the way a model's service would."""
    folder = lake.landing_dir(model, table, day)
    folder.mkdir(parents=True, exist_ok=True)
    data = rows if isinstance(rows, pa.Table) else pa.table(rows)
    pq.write_table(data, folder / name)
    return folder / name


def fraud_rows(day: str, ids: list[str], **overrides) -> pa.Table:
    """Valid fraud predictions for ``ids`` on ``day``; ``overrides`` replace whole columns."""
    n = len(ids)
    columns = {
        "prediction_id": pa.array(ids, pa.string()),
        "model_version": pa.array(["v11"] * n),
        "ts": pa.array([at(day, 1 + i % 22, i % 60) for i in range(n)], pa.timestamp("us", tz="UTC")),
        "score": pa.array([(i % 10) / 10 + 0.05 for i in range(n)], pa.float64()),
        "amount": pa.array([10.0 + i for i in range(n)]),
        "account_age_days": pa.array([100] * n),
        "txn_count_24h": pa.array([1] * n),
        "avg_amount_30d": pa.array([50.0] * n),
        "distance_from_home_km": pa.array([3.5] * n),
        "device_risk_score": pa.array([0.2] * n),
        "ip_reputation": pa.array([0.9] * n),
        "minutes_since_last_txn": pa.array([60.0] * n),
        "payment_type": pa.array(["card"] * n),
        "merchant_category": pa.array(["grocery"] * n),
        "device_type": pa.array(["ios"] * n),
        "merchant_id": pa.array([f"m{i % 7}" for i in range(n)]),
        "country": pa.array(["DE"] * n),
        "channel": pa.array(["web"] * n),
        "request_id": pa.array([f"req_{i}" for i in ids], pa.string()),
    }
    for name, values in overrides.items():
        columns[name] = values if isinstance(values, pa.Array) else pa.array(values)
    return pa.table(columns)


def label_rows(ids: list[str], labels: list[int], when: dt.datetime, **names) -> pa.Table:
    """Label arrivals; ``names`` renames closedloop's columns to a model's own."""
    table = pa.table(
        {
            "prediction_id": pa.array(ids, pa.string()),
            "label": pa.array(labels, pa.int8()),
            "label_ts": pa.array([when] * len(ids), pa.timestamp("us", tz="UTC")),
        }
    )
    return table.rename_columns([names.get(c, c) for c in table.column_names])


# --- hand-made outcomes and their binned counts ------------------------------------------------

FRAUD = load_registry(TEST_REGISTRY).models["fraud"]
OUTCOMES_DAY = dt.date(2026, 9, 1)
OUTCOMES_TS = dt.datetime(2026, 9, 1, 12, tzinfo=UTC)


def outcomes_table(scores, labels, *, decisions=None, versions=None, matured=None, segments=None) -> pa.Table:
    """A fraud ``outcomes`` partition holding exactly these rows (label None = unlabeled)."""
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    labels = [None if label is None else int(label) for label in labels]
    segments = segments or {}
    return pa.table(
        {
            "prediction_id": [f"p{i}" for i in range(n)],
            "model_version": versions if versions is not None else ["v11"] * n,
            "ts": [OUTCOMES_TS] * n,
            "score": scores,
            "decision": decisions if decisions is not None else (scores >= 0.5).astype(np.int8),
            "request_id": [f"req_p{i}" for i in range(n)],
            **{name: segments.get(name, ["x"] * n) for name in FRAUD.segments},
            "label": labels,
            "label_ts": [None if label is None else OUTCOMES_TS for label in labels],
            "label_delay_hours": [None if label is None else 0.0 for label in labels],
            "label_matured": matured if matured is not None else [label is not None for label in labels],
        },
        schema=outcomes_schema(FRAUD),
    )


def binned(scores, labels, **kwargs) -> ScoreCounts:
    """The counts the pipeline would keep for these rows."""
    stats = eval_stats(outcomes_table(scores, labels, **kwargs), FRAUD, OUTCOMES_DAY)
    return score_counts(stats, "matured", pool_versions=False).get(("v11", "all", "all"), ScoreCounts.empty())


# --- hand-made drift baselines -------------------------------------------------------------------


def hand_made_baseline(
    numeric: dict[str, list[float]], categorical: dict[str, tuple[list[str], list[str] | dict[str, int]]]
) -> Baseline:
    """A baseline with chosen edges and values (known values without counts were seen twice each)."""
    return Baseline(
        model="fraud",
        name="hand_made",
        source={"kind": "test"},
        rows=0,
        numeric={c: NumericBaseline(tuple(edges), None, None, 0.0) for c, edges in numeric.items()},
        categorical={
            c: CategoricalBaseline(tuple(top), dict(known) if isinstance(known, dict) else dict.fromkeys(known, 2), 0.0)
            for c, (top, known) in categorical.items()
        },
        hash="0123456789abcdef",
        profile=MERGED_SCHEMA.empty_table(),
    )


# --- a webhook receiver --------------------------------------------------------------------------


class Recorder(http.server.BaseHTTPRequestHandler):
    """A webhook receiver: keeps every JSON body posted to it and answers with ``status``."""

    received: list = []
    status = 200

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


# --- the incident loop: hand-made SLO evaluations and sensor ticks --------------------------------

HOUR = dt.datetime(2026, 9, 16, 10, tzinfo=UTC)


def triage_evaluation(
    slo: str, period: dt.datetime, state: str, value: float, transition: str | None, since: dt.datetime | None
):
    """One ``slo_evaluations`` row of ticket_triage's hourly p95 SLO (or another hourly one)."""
    return {
        "model": "ticket_triage",
        "slo": slo,
        "metric": "latency_p95_ms",
        "source": "ops.latency_p95_ms",
        "cadence": "hourly",
        "period": period.isoformat(),
        "day": period.date(),
        "version": "all",
        "value": value,
        "rows": 900,
        "detail": None,
        "comparison": "<=",
        "threshold": 4000.0,
        "band_low": None,
        "band_high": None,
        "breach": state != "ok",
        "consecutive_breaches": int(state != "ok"),
        "consecutive_ok": int(state == "ok"),
        "state": state,
        "breached_since": since.isoformat() if since else None,
        "transition": transition,
        "severity": "page",
        "owner": "team:llm-platform",
        "evaluated_at": dt.datetime.now(UTC),
    }


def record_triage_evaluations(lake, *rows):
    record_evaluations(lake, "ticket_triage", pa.Table.from_pylist(list(rows), schema=SLO_EVALUATIONS_SCHEMA))


def tick_sensor(defs, instance, sensor, job: str, cursor: str | None = None, webhook=None) -> tuple[list, str | None]:
    """Evaluate ``sensor`` once (as the daemon would, with ``cursor``) and execute each run it requests
    in-process; each request's tags get ``run_success``. Returns the requests and the new cursor."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"lake": defs.resources["lake"]})
    result = sensor(context)
    requests = result if isinstance(result, list) else []
    for request in requests:
        run = defs.get_job_def(job).execute_in_process(
            run_config=request.run_config,
            instance=instance,
            tags=request.tags,
            resources={"lake": defs.resources["lake"], "webhook": webhook or WebhookResource()},
            raise_on_error=False,
        )
        request.tags["run_success"] = str(run.success)
    return requests, context.cursor


# --- processes and servers a test starts: dagster dev, the webserver, the daemon ------------------

BIN = Path(sys.executable).parent  # the venv's closedloop and dagster commands
SERVER_START_SECONDS = 120
SERVER_STOP_SECONDS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, query: str | None = None, variables: dict | None = None) -> dict:
    body = None if query is None else json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def graphql(base_url: str, query: str, variables: dict | None = None) -> dict:
    """Ask the webserver's GraphQL endpoint (the browser tests use it for waiting and cross-checks only)."""
    answer = _get(f"{base_url}/graphql", query, variables)
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


LOCATION_STATUS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


def wait_until_serving(process: subprocess.Popen, base_url: str, log: Path) -> None:
    """Until the webserver (of ``dagster dev`` or ``dagster-webserver``) answers /server_info and the code
    location has loaded (the UI would show 'Loading' before)."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{process.args[1]} exited with {process.returncode}; see {log}"
        try:
            _get(f"{base_url}/server_info")
            entries = graphql(base_url, LOCATION_STATUS)["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    raise AssertionError(f"{process.args[1]} did not serve within {SERVER_START_SECONDS} s; see {log}")


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM to a process started in its own group (``start_new_session``) and to all it started (the
    webserver's and daemon's code servers and runs), SIGKILL what outlives the wait."""
    group = process.pid
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:  # the whole group had exited already (a server that failed to start)
        process.wait()
        return
    deadline = time.monotonic() + SERVER_STOP_SECONDS
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    os.killpg(group, signal.SIGKILL)
    process.wait()
