"""Shared fixtures: the tests' registry pointed at a temporary lake, and webhook endpoints.

Helpers shared by test modules live in tests/helpers.py.
"""

import http.server
import socket
import threading
from pathlib import Path

import pytest

from closedloop.core.lake import Lake
from closedloop.core.specs import Registry
from closedloop.registry import load_registry
from tests.helpers import TEST_REGISTRY, Recorder


@pytest.fixture(autouse=True)
def _the_cli_and_code_location_read_the_test_registry(monkeypatch):
    """Whatever loads the registry from the environment (the CLI, `dagster` tools) reads the tests' own;
    a test about the demo registry sets CLOSEDLOOP_CONFIG itself."""
    monkeypatch.setenv("CLOSEDLOOP_CONFIG", str(TEST_REGISTRY))


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return load_registry(TEST_REGISTRY, landing=str(tmp_path / "landing"), lake=str(tmp_path / "lake"))


@pytest.fixture
def lake(registry: Registry) -> Lake:
    return Lake(root=registry.lake, landing=registry.landing)


@pytest.fixture
def webhook_servers():
    """Start real HTTP servers on 127.0.0.1; each call returns one's URL and handler (``received``, ``status``)."""
    running = []

    def start() -> tuple[str, type[Recorder]]:
        handler = type("Handler", (Recorder,), {"received": [], "status": 200})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        running.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/hook", handler

    yield start
    for httpd in running:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def webhook_server(webhook_servers):
    """A real HTTP server on 127.0.0.1: its URL and its handler class (``received``, ``status``)."""
    return webhook_servers()


@pytest.fixture
def dead_webhook_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
