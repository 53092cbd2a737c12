"""The domain package stays free of Dagster, so it can be tested and reused without it."""

import ast
import subprocess
import sys
from pathlib import Path

import closedloop

PACKAGE = Path(closedloop.__file__).parent


def test_no_module_of_the_domain_imports_dagster():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(PACKAGE)}: {n}"
                for n in names
                if n.split(".")[0] in {"dagster", "orchestration", "assets", "checks"}
            ]
    assert offenders == []


def test_importing_every_domain_module_loads_no_dagster():
    script = (
        "import importlib, pkgutil, sys, closedloop\n"
        "for m in pkgutil.walk_packages(closedloop.__path__, 'closedloop.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] == 'dagster'))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
