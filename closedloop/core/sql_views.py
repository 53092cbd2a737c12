"""The DuckDB catalog: views over every lake table, for ad-hoc SQL (``closedloop sql``).

Views are named ``<model>_<table>`` (e.g. ``fraud_predictions``) and read the Parquet files
with a glob, so partitions written after the catalog was refreshed show up on the next query.
"""

import pandas as pd

from closedloop.core.lake import LAKE_TABLES, Lake
from closedloop.core.specs import Registry
from closedloop.core.sql import connect


def refresh_catalog(lake: Lake, registry: Registry) -> list[str]:
    """(Re)create one view per model and table that has data; returns the view names."""
    lake.root.mkdir(parents=True, exist_ok=True)
    views = []
    with connect(str(lake.catalog_path)) as con:
        for model in registry.models:
            for table in LAKE_TABLES:
                view = f"{model}_{table}"
                con.execute("DROP VIEW IF EXISTS " + _quoted(view))
                files = lake.table_glob(model, table)
                if not any(lake.root.glob(str(files.relative_to(lake.root)))):
                    continue
                con.read_parquet(str(files), hive_partitioning=True, union_by_name=True).create_view(view, replace=True)
                views.append(view)
    return views


def query(lake: Lake, sql: str) -> pd.DataFrame:
    """Run ``sql`` against the catalog, read-only."""
    with connect(str(lake.catalog_path), read_only=True) as con:
        return con.sql(sql).df()


def _quoted(identifier: str) -> str:
    """A view name built from validated model and table names, quoted for DDL."""
    return '"' + identifier.replace('"', '""') + '"'
