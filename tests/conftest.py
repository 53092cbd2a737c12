"""Shared fixtures: the project's registry pointed at a temporary lake, and landing-file helpers."""

import datetime as dt
import http.server
import json
import socket
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from closedloop.core.lake import Lake
from closedloop.registry import DEFAULT_CONFIG, load_registry
from closedloop.core.specs import Registry

UTC = dt.timezone.utc


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return load_registry(DEFAULT_CONFIG, landing=str(tmp_path / "landing"), lake=str(tmp_path / "lake"))


@pytest.fixture
def lake(registry: Registry) -> Lake:
    return Lake(root=registry.lake, landing=registry.landing)


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


class _Recorder(http.server.BaseHTTPRequestHandler):
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


@pytest.fixture
def webhook_server():
    """A real HTTP server on 127.0.0.1: its URL and its handler class (``received``, ``status``)."""
    handler = type("Handler", (_Recorder,), {"received": [], "status": 200})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", handler
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dead_webhook_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
