"""Where closedloop keeps its own state, so that nothing is written to the user's home folder.

Dagster's instance (runs, event logs, schedules) lives in DAGSTER_HOME and matplotlib caches
fonts in MPLCONFIGDIR; both default to folders under closedloop's data directory. The instance's
settings turn Dagster's telemetry off and give the run queue deploy/dagster.yaml's limits (one run
per SLO at a time, so that an SLO's incident is opened before it is closed, and one run that
materializes a model's partitions at a time; see wiring/tags.py).
``python -m closedloop.core.environment`` prepares the folders (the Makefile's ``ui`` target does).
"""

import os
from pathlib import Path

DAGSTER_YAML = """\
telemetry:
  enabled: false
concurrency:
  runs:
    tag_concurrency_limits:
      - key: closedloop/writes_partitions_of
        value: {applyLimitPerUniqueValue: true}
        limit: 1
      - key: closedloop/slo
        value: {applyLimitPerUniqueValue: true}
        limit: 1
"""


def data_dir() -> Path:
    """CLOSEDLOOP_DATA, else ``data/`` under the working directory."""
    return Path(os.environ.get("CLOSEDLOOP_DATA", "data")).resolve()


def prepare_environment() -> Path:
    """Point DAGSTER_HOME and MPLCONFIGDIR at the data directory unless the user set them."""
    base = data_dir()
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(base / "dagster_home")))
    dagster_home.mkdir(parents=True, exist_ok=True)
    settings = dagster_home / "dagster.yaml"
    if not settings.exists():
        settings.write_text(DAGSTER_YAML)
    mpl = Path(os.environ.setdefault("MPLCONFIGDIR", str(base / "mplconfig")))
    mpl.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    return dagster_home


if __name__ == "__main__":
    print(prepare_environment())
