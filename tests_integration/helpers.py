"""What the integration tests share: a PostgreSQL server of the system's own, and Dagster's GraphQL API.

Test modules import from here (conftest.py holds only fixtures).
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import day, free_port, graphql

# Seven days of both models that hold an injected incident of each, with its first day: fraud's new
# payment type (from day 12) and ticket_triage's traffic spike (day 15, 10:00-16:00). Both models'
# partitions start on the first day and end on the last, fraud's drift baseline is the first three.
DAYS = [day(offset) for offset in range(9, 16)]


@dataclass(frozen=True)
class Production:
    """A simulated production's folders and the environment every process of the deployment gets."""

    landing: Path
    lake: Path
    registry: Path
    dagster_home: Path
    env: dict[str, str]


@dataclass(frozen=True)
class Deployment:
    """dagster-webserver and dagster-daemon running on the production instance."""

    base_url: str  # the webserver's
    webserver: subprocess.Popen
    webserver_log: Path


# Debian's PostgreSQL keeps its programs out of PATH, one folder per major version.
POSTGRES_PROGRAMS = Path("/usr/lib/postgresql")
POSTGRES_START_SECONDS = 60
# PostgreSQL refuses to run as root: as root (CI), its programs run as Debian's `postgres` user.
POSTGRES_USER = "postgres"


@dataclass(frozen=True)
class Postgres:
    """A running server: where to reach it, and the environment deploy/dagster.yaml reads it from."""

    port: int
    database: str
    user: str
    password: str

    @property
    def environment(self) -> dict[str, str]:
        return {
            "DAGSTER_POSTGRES_HOST": "127.0.0.1",
            "DAGSTER_POSTGRES_PORT": str(self.port),
            "DAGSTER_POSTGRES_DB": self.database,
            "DAGSTER_POSTGRES_USER": self.user,
            "DAGSTER_POSTGRES_PASSWORD": self.password,
        }


def postgres_programs() -> Path:
    """The newest installed PostgreSQL's programs folder (``make test-integration`` installs one)."""
    found = sorted(POSTGRES_PROGRAMS.glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError(
            f"no PostgreSQL server programs under {POSTGRES_PROGRAMS}/*/bin: run `make test-integration`, "
            "which installs Debian's postgresql package when they are missing"
        )
    return found[-1].parent


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", POSTGRES_USER, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(_as_server_user(command), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({' '.join(command)}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


@contextmanager
def postgres_server(log_copy: Path, database: str = "dagster", user: str = "closedloop") -> Iterator[Postgres]:
    """initdb a cluster in a temporary folder, start it on 127.0.0.1 with password authentication,
    create ``database``; stop it, copy its log to ``log_copy`` and remove the folder on the way out,
    whatever happened."""
    programs = postgres_programs()
    folder = Path(tempfile.mkdtemp(prefix="closedloop-postgres-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam(POSTGRES_USER)
        os.chown(folder, account.pw_uid, account.pw_gid)
    data, log = folder / "data", folder / "server.log"
    password = os.urandom(12).hex()
    password_file = folder / "password"
    password_file.write_text(password)
    if os.geteuid() == 0:
        os.chown(password_file, account.pw_uid, account.pw_gid)
    port = free_port()
    started = False
    try:
        _run(
            [str(programs / "initdb"), "-D", str(data), "-U", user, f"--pwfile={password_file}",
             "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"],
            "initdb",
        )  # fmt: skip
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        _run(
            [str(programs / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w",
             "-t", str(POSTGRES_START_SECONDS), "start"],
            f"starting PostgreSQL (log: {log_copy})",
        )  # fmt: skip
        started = True
        created = subprocess.run(
            [str(programs / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, database],
            env={**os.environ, "PGPASSWORD": password},
            capture_output=True,
            text=True,
        )
        assert created.returncode == 0, f"createdb {database} failed: {created.stderr}"
        yield Postgres(port=port, database=database, user=user, password=password)
    finally:
        if started:
            _run([str(programs / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], "stopping PostgreSQL")
        if log.exists():
            shutil.copy(log, log_copy)
        shutil.rmtree(folder, ignore_errors=True)


LAUNCH_BACKFILL = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on PartitionSetNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""


def launch_job_backfill(base_url: str, job: str, days: list[str]) -> str:
    """A backfill of ``job`` over ``days``, as the job's Partitions page launches it; its backfill id.
    The daemon's backfill daemon turns it into runs (one per model here: single-run backfill policies)."""
    params = {
        "selector": {
            "partitionSetName": f"{job}_partition_set",
            "repositorySelector": {"repositoryLocationName": "closedloop", "repositoryName": "__repository__"},
        },
        "partitionNames": days,
    }
    answer = graphql(base_url, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", f"launching a backfill of {job} failed: {answer}"
    return answer["backfillId"]


def wait_for(what: str, seconds: float, done, progress) -> None:
    """Poll ``done()`` every 2 s until it is true; after ``seconds`` fail naming ``what`` and ``progress()``."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds:.0f} s; {progress()}")
        time.sleep(2)
