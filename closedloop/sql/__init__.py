"""DuckDB: the named queries in this folder, and connections configured the same way everywhere."""

from importlib import resources

import duckdb


def query(name: str) -> str:
    """The text of ``<name>.sql`` in this folder."""
    return resources.files(__name__).joinpath(f"{name}.sql").read_text()


def connect(database: str = ":memory:", read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection that prints nothing on its own (no progress bar in run logs or the CLI)."""
    con = duckdb.connect(database, read_only=read_only)
    con.execute("SET enable_progress_bar = false")
    return con
