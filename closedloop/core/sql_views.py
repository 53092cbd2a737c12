"""The lake as views for ad-hoc SQL (``closedloop sql``), read-only and nothing but the lake.

Each lake table with data is a view named ``<model>_<table>`` (e.g. ``fraud_predictions``) over
a pyarrow dataset of its partition files, with the Hive partition keys as columns (``date``, and
``table`` for quarantine). DuckDB reads the datasets it is handed and cannot open a file itself
(``core.sql.sealed``), so a query can neither write the lake nor read anything outside it. The
views live in the query's own in-memory database: nothing is kept between queries, so any
number of ``closedloop sql`` can run at once and each sees the partitions written so far.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from closedloop.core.lake import LAKE_TABLES, Lake
from closedloop.core.specs import Registry
from closedloop.core.sql import sealed


def lake_dataset(lake: Lake, model: str, table: str) -> ds.Dataset | None:
    """Every partition file of one table as a dataset (columns unified across days), or None when it has none."""
    pattern = lake.table_glob(model, table)
    files = sorted(lake.root.glob(str(pattern.relative_to(lake.root))))
    if not files:
        return None
    keys = [pa.field("table", pa.string())] if table == "quarantine" else []
    keys.append(pa.field("date", pa.date32()))
    columns = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
    partitioning = ds.partitioning(pa.schema(keys), flavor="hive")
    schema = pa.schema(list(columns) + [key for key in keys if key.name not in columns.names])
    base = str(lake.root / model / table)
    return ds.dataset([str(f) for f in files], schema=schema, partitioning=partitioning, partition_base_dir=base)


def query(lake: Lake, registry: Registry, sql: str) -> pd.DataFrame:
    """Run ``sql`` over the views of every model's lake tables; duckdb.Error when it fails or is refused."""
    with sealed() as con:
        for model in registry.models:
            for table in LAKE_TABLES:
                dataset = lake_dataset(lake, model, table)
                if dataset is not None:
                    con.register(f"{model}_{table}", dataset)
        relation = con.sql(sql)
        return relation.df() if relation is not None else pd.DataFrame()
