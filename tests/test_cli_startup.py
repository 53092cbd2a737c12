"""The command line starts light: ``--help`` and the read commands do not import the heavy libraries.

Each command's module is imported only when it runs, and the modules the read commands reach
keep pandas, scipy, scikit-learn, matplotlib, Dagster and Great Expectations out of their imports.
pyarrow itself imports pandas the first time a command turns rows into Python objects or calls
a compute function, so only the commands that do neither are held to no pandas at all. Each
case runs in a fresh interpreter, since this test session has imported everything already.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration import cli

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("dagster", "great_expectations", "sklearn", "matplotlib", "scipy")

SCRIPT = """
import json, sys
from orchestration import cli
codes = []
for argv in {commands!r}:
    try:
        codes.append(cli.main(argv))
    except SystemExit as exit:  # --help
        codes.append(exit.code)
print(json.dumps({{"codes": codes, "loaded": sorted({{n.split(".")[0] for n in sys.modules}})}}))
"""


def _run(commands: list[list[str]], lake: Path) -> tuple[dict, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CLOSEDLOOP_LAKE": str(lake)}
    env.pop("CLOSEDLOOP_CONFIG", None)
    script = SCRIPT.format(commands=commands)
    done = subprocess.run([sys.executable, "-c", script], cwd=lake.parent, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout + done.stderr


@pytest.mark.parametrize(
    ("commands", "codes", "light"),
    [
        ([["--help"], ["report", "--help"], ["quarantine", "--model", "fraud"]], [0, 0, 0], HEAVY + ("pandas",)),
        (
            [
                ["status", "--json"],
                ["actions", "--state", "applied", "--json"],
                ["metrics", "--model", "fraud", "--date", "2026-09-01"],
            ],
            [0, 0, 2],
            HEAVY,
        ),
    ],
    ids=["help-and-quarantine", "status-actions-metrics"],
)
def test_help_and_the_read_commands_import_no_heavy_library(commands, codes, light, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(lake))
    assert cli.main(["rollback", "--model", "fraud", "--who", "test"]) == 0  # one audited action to list
    result, output = _run(commands, lake)
    assert result["codes"] == codes
    assert set(light).isdisjoint(result["loaded"]), sorted(set(light) & set(result["loaded"]))
    if ["actions", "--state", "applied", "--json"] in commands:
        assert '"type": "rollback"' in output
        assert "no rolling evaluation of fraud for 2026-09-01" in output  # metrics on this lake: one line, exit 2
