"""Fixtures of the integration tests: PostgreSQL, a webhook receiver, seven simulated days, and a deployment
(dagster-webserver and dagster-daemon on deploy/dagster.yaml), each stopped on the way out, pass or fail.

Logs of the webserver, the daemon and PostgreSQL go to ``artifacts()`` (emptied at the start).
"""

import datetime as dt
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from closedloop.core.environment import data_dir
from closedloop.simulator import simulate
from tests.helpers import BIN, TEST_REGISTRY, Recorder, free_port, stop_process_group, wait_until_serving
from tests_integration.helpers import DAYS, Deployment, Postgres, Production, postgres_server

PROJECT = Path(__file__).resolve().parent.parent
SIMULATED_DAYS = 16  # the simulator's days 0..15; the landing keeps only DAYS


def pytest_terminal_summary(terminalreporter) -> None:
    terminalreporter.write_line(f"integration test logs: {_artifacts_dir()}")


def _artifacts_dir() -> Path:
    return data_dir() / "integration-artifacts"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = _artifacts_dir()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture(scope="session")
def postgres(artifacts: Path) -> Iterator[Postgres]:
    with postgres_server(artifacts / "postgres.log") as server:
        yield server


@pytest.fixture(scope="session")
def webhook() -> Iterator[tuple[str, type[Recorder]]]:
    """A webhook receiver on 127.0.0.1: its URL and its handler class (``received``)."""
    handler = type("Handler", (Recorder,), {"received": [], "status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


def _seven_day_registry(path: Path) -> None:
    """The tests' registry with both models' partitions on DAYS and fraud's baseline on their first three."""
    registry = yaml.safe_load(TEST_REGISTRY.read_text())
    first, last = dt.date.fromisoformat(DAYS[0]), dt.date.fromisoformat(DAYS[-1])
    for model in registry["models"].values():
        model["start_date"], model["end_date"] = first, last
        model["baseline"] = {"start": first, "end": first + dt.timedelta(days=2)}
    path.write_text(yaml.safe_dump(registry, sort_keys=False))


def _keep_only(landing: Path, days: list[str]) -> None:
    """Remove every landed day outside ``days``: the service's logs of the seven days, nothing before."""
    for folder in landing.glob("*/*/date=*"):
        if folder.name.removeprefix("date=") not in days:
            shutil.rmtree(folder)


@pytest.fixture(scope="session")
def production(tmp_path_factory, postgres: Postgres, webhook) -> Production:
    """The folders and environment; nothing landed yet (``landed`` lands the days once the deployment runs)."""
    root = tmp_path_factory.mktemp("production")
    landing, lake, registry, dagster_home = root / "landing", root / "lake", root / "models.yaml", root / "dagster_home"
    _seven_day_registry(registry)
    dagster_home.mkdir()
    shutil.copy(PROJECT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        **os.environ,
        **postgres.environment,
        "DAGSTER_HOME": str(dagster_home),
        "CLOSEDLOOP_CONFIG": str(registry),
        "CLOSEDLOOP_LANDING": str(landing),
        "CLOSEDLOOP_LAKE": str(lake),
        "CLOSEDLOOP_WEBHOOK_URL": webhook[0],
        "MPLCONFIGDIR": str(root / "mplconfig"),
        "MPLBACKEND": "Agg",
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    return Production(landing, lake, registry, dagster_home, env)


def _start(command: list[str], production: Production, log: Path) -> subprocess.Popen:
    with log.open("w") as output:
        return subprocess.Popen(
            command,
            cwd=PROJECT,
            env=production.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: one signal stops it, its code server and its runs
        )


@pytest.fixture(scope="session")
def deployment(production: Production, artifacts: Path) -> Iterator[Deployment]:
    """``dagster-daemon run`` and ``dagster-webserver`` on the production instance, starting (``landed`` waits
    until the webserver serves, so that they load while the days land)."""
    workspace = ["-w", "workspace.yaml"]
    port = free_port()
    started = []
    try:
        started.append(_start([str(BIN / "dagster-daemon"), "run", *workspace], production, artifacts / "daemon.log"))
        webserver_log = artifacts / "webserver.log"
        command = [str(BIN / "dagster-webserver"), *workspace, "-h", "127.0.0.1", "-p", str(port)]
        started.append(_start(command, production, webserver_log))
        yield Deployment(f"http://127.0.0.1:{port}", started[-1], webserver_log)
    finally:
        for process in started:
            stop_process_group(process)


@pytest.fixture(scope="session")
def landed(production: Production, deployment: Deployment) -> Production:
    """The seven days of both models landed, as the services would while the deployment runs; returns once
    the webserver serves the code location."""
    simulate(production.landing, days=SIMULATED_DAYS, seed=7, fraud_rows_per_day=1500, triage_rows_per_day=3000)
    _keep_only(production.landing, DAYS)
    wait_until_serving(deployment.webserver, deployment.base_url, deployment.webserver_log)
    return production


@pytest.fixture(scope="session")
def instance(production: Production) -> Iterator[dg.DagsterInstance]:
    """The deployment's instance as any process reads it: deploy/dagster.yaml, Postgres from the environment."""
    with pytest.MonkeyPatch.context() as environment:
        for name, value in production.env.items():
            environment.setenv(name, value)
        with dg.DagsterInstance.from_config(str(production.dagster_home)) as opened:
            yield opened
