"""The lake: every path closedloop reads or writes, and the one way to write a partition.

Landing data (what a model's service logs) is read from
``<landing>/<model>/<table>/date=YYYY-MM-DD/*.parquet``; closedloop writes its own tables to
``<lake>/<model>/<table>/date=YYYY-MM-DD/part.parquet``, one file per partition, replaced
atomically so that re-materializing a day never duplicates it and a crash never leaves half a file.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import pyarrow as pa
import pyarrow.parquet as pq

from closedloop.core.names import InvalidNameError, checked_day, checked_name

# ``shadow``: scores of a version that saw every request but whose decisions were not applied.
LANDING_TABLES = ("predictions", "labels", "shadow")
LAKE_TABLES = (
    "predictions",
    # Per day, the distinct prediction ids of ``predictions``, sorted (closedloop.inputs.id_index).
    "prediction_ids",
    "labels",
    "shadow",
    "quarantine",
    "profiles",
    "samples",
    "drift",
    "outcomes",
    "eval_stats",
    "rolling_eval",
    "ops_stats",
    "slo_evaluations",
    "incidents",
    "actions",
    "acknowledgements",
    "silences",
)
DOCUMENT_KINDS = ("baselines", "validations", "calibrators")
PARTITION_FILE = "part.parquet"
_COMPARISON_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,199}")


class LakeError(RuntimeError):
    """A lake file that cannot be read or written; the message names the file."""


def _checked_table(table: str, known: tuple[str, ...]) -> str:
    if table not in known:
        raise LakeError(f"unknown table or kind {table!r}; expected one of {list(known)}")
    return table


@dataclass(frozen=True)
class Landing:
    """Where a model's service lands its logs: ``<root>/<model>/<table>/date=YYYY-MM-DD/*.parquet``."""

    root: Path

    def model_dir(self, model: str) -> Path:
        return Path(self.root) / checked_name(model, "model name")

    def partition_dir(self, model: str, table: str, day: str | dt.date) -> Path:
        return self.model_dir(model) / _checked_table(table, LANDING_TABLES) / f"date={checked_day(day).isoformat()}"


@dataclass(frozen=True)
class Lake:
    """Paths under a landing root and a lake root on the local file system."""

    root: Path
    landing: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "landing", Path(self.landing))

    # Landing zone (read only)

    def landing_dir(self, model: str, table: str, day: str | dt.date) -> Path:
        return Landing(self.landing).partition_dir(model, table, day)

    def misnamed_landing(self, model: str, table: str) -> list[Path]:
        """What sits in a landing table's folder that no day reads: anything but ``date=YYYY-MM-DD`` folders
        of real dates (``date=2026-9-3``, ``2026-09-03``, a file dropped beside the day folders)."""
        folder = Landing(self.landing).model_dir(model) / _checked_table(table, LANDING_TABLES)
        if not folder.is_dir():
            return []
        stray = []
        for entry in sorted(folder.iterdir()):
            name = entry.name.removeprefix("date=")
            try:
                named_by_day = (
                    entry.is_dir() and entry.name.startswith("date=") and checked_day(name).isoformat() == name
                )
            except InvalidNameError:
                named_by_day = False
            if not named_by_day and not entry.name.startswith("."):
                stray.append(entry)
        return stray

    def landing_files(self, model: str, table: str, day: str | dt.date) -> list[Path]:
        """The day's landed Parquet files in name order (empty when nothing landed)."""
        folder = self.landing_dir(model, table, day)
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.suffix == ".parquet" and p.is_file())

    # Lake tables (written by closedloop)

    def partition_path(self, model: str, table: str, day: str | dt.date) -> Path:
        checked_name(model, "model name")
        _checked_table(table, LAKE_TABLES)
        return self.root / model / table / f"date={checked_day(day).isoformat()}" / PARTITION_FILE

    def quarantine_path(self, model: str, source_table: str, day: str | dt.date) -> Path:
        """Quarantine is Hive-partitioned by the table the rows were meant for, then by day."""
        return self._quarantine_dir(model, source_table) / f"date={checked_day(day).isoformat()}" / PARTITION_FILE

    def _quarantine_dir(self, model: str, source_table: str) -> Path:
        checked_name(model, "model name")
        return self.root / model / "quarantine" / f"table={_checked_table(source_table, LANDING_TABLES)}"

    @staticmethod
    def day_of(partition_file: Path) -> dt.date:
        """The day a partition file belongs to (its ``date=YYYY-MM-DD`` folder)."""
        return checked_day(Path(partition_file).parent.name.removeprefix("date="))

    def quarantine_files(self, model: str, source_table: str) -> list[Path]:
        """Every day's quarantined rows of one landing table, in date order."""
        return sorted(self._quarantine_dir(model, source_table).glob(f"date=*/{PARTITION_FILE}"))

    def table_glob(self, model: str, table: str) -> Path:
        """A glob over every partition file of a table (quarantine: of every landing table), for DuckDB views."""
        folder = self.root / checked_name(model, "model name") / _checked_table(table, LAKE_TABLES)
        return folder / "table=*" / "date=*" / "*.parquet" if table == "quarantine" else folder / "date=*" / "*.parquet"

    def write_partition(
        self, model: str, table: str, day: str | dt.date, data: pa.Table, row_group_rows: int | None = None
    ) -> Path:
        """Replace one partition with ``data``, atomically (in row groups of ``row_group_rows``, if given)."""
        return _replace_atomically(self.partition_path(model, table, day), data, row_group_rows)

    def write_quarantine(self, model: str, source_table: str, day: str | dt.date, data: pa.Table) -> Path:
        """Replace the quarantined rows of one landing partition, atomically."""
        return _replace_atomically(self.quarantine_path(model, source_table, day), data)

    def read_partition(
        self, model: str, table: str, day: str | dt.date, columns: list[str] | None = None
    ) -> pa.Table | None:
        """One partition, or None when it was never written."""
        return _read(self.partition_path(model, table, day), columns)

    def partition_files(
        self,
        model: str,
        table: str,
        start: str | dt.date | None = None,
        end: str | dt.date | None = None,
        modified_after_ns: int | None = None,
    ) -> list[Path]:
        """Existing partition files of a table with start <= date <= end, in date order.

        ``modified_after_ns`` keeps only files written after that time (``st_mtime_ns``): a cheap
        way to find what changed since a cursor without reading the whole table.
        """
        first = checked_day(start) if start is not None else dt.date.min
        last = checked_day(end) if end is not None else dt.date.max
        folder = self.root / checked_name(model, "model name") / _checked_table(table, LAKE_TABLES)
        if not folder.is_dir():
            return []
        found = []
        for child in folder.iterdir():
            if not child.name.startswith("date="):
                continue
            try:
                day = dt.date.fromisoformat(child.name.removeprefix("date="))
            except ValueError:
                continue
            path = child / PARTITION_FILE
            if (
                first <= day <= last
                and path.is_file()
                and (modified_after_ns is None or path.stat().st_mtime_ns > modified_after_ns)
            ):
                found.append((day, path))
        return [path for _, path in sorted(found)]

    @staticmethod
    def read_files(paths: list[Path], schema: pa.Schema) -> pa.Table:
        """Lake partition files as one table of ``schema`` (empty when there are none)."""
        return pa.concat_tables([schema.empty_table()] + [conformed(_read_existing(path), schema) for path in paths])

    @overload
    def read_range(
        self,
        model: str,
        table: str,
        start: str | dt.date | None = None,
        end: str | dt.date | None = None,
        *,
        schema: pa.Schema,
        columns: list[str] | None = None,
    ) -> pa.Table: ...

    @overload
    def read_range(
        self,
        model: str,
        table: str,
        start: str | dt.date | None = None,
        end: str | dt.date | None = None,
        schema: None = None,
        columns: list[str] | None = None,
    ) -> pa.Table | None: ...

    def read_range(
        self,
        model: str,
        table: str,
        start: str | dt.date | None = None,
        end: str | dt.date | None = None,
        schema: pa.Schema | None = None,
        columns: list[str] | None = None,
    ) -> pa.Table | None:
        """Every existing partition of a table from ``start`` to ``end``, in date order, as one table.

        Without ``schema``: None when no partition has rows (only ``columns``, if given). With
        it: every partition cast to ``schema``, and an empty table of that schema when there is none.
        """
        files = self.partition_files(model, table, start, end)
        if schema is not None:
            return self.read_files(files, schema)
        parts = [part for part in (_read_existing(path, columns) for path in files) if part.num_rows]
        return pa.concat_tables(parts) if parts else None

    def last_partition_day(self, model: str, table: str) -> dt.date | None:
        """The latest day a table has a partition for (None when it has none)."""
        files = self.partition_files(model, table)
        return dt.date.fromisoformat(files[-1].parent.name.removeprefix("date=")) if files else None

    def figure_path(self, model: str, figure: str, day: str | dt.date) -> Path:
        """A report figure (PNG) of one day: ``<lake>/<model>/figures/<figure>/date=D.png``."""
        checked_name(model, "model name")
        return (
            self.root
            / model
            / "figures"
            / checked_name(figure, "figure name")
            / f"date={checked_day(day).isoformat()}.png"
        )

    @property
    def reports_dir(self) -> Path:
        """Daily reports: ``<lake>/reports/index.html``, ``summary.html`` and ``<model>/YYYY-MM-DD.html``."""
        return self.root / "reports"

    def report_path(self, model: str, day: str | dt.date) -> Path:
        """One model's daily report: ``<lake>/reports/<model>/YYYY-MM-DD.html``."""
        return self.reports_dir / checked_name(model, "model name") / f"{checked_day(day).isoformat()}.html"

    def comparison_dir(self, model: str, comparison_id: str) -> Path:
        """The folder of one version comparison: ``<lake>/<model>/comparisons/<id>/``."""
        if not _COMPARISON_ID.fullmatch(comparison_id):
            raise LakeError(f"invalid comparison id {comparison_id!r}: letters, digits and underscores only")
        return self.root / checked_name(model, "model name") / "comparisons" / comparison_id

    def document_path(self, model: str, kind: str, key: str) -> Path:
        """A JSON document closedloop keeps beside the tables (a frozen baseline, a validation result, ...).

        ``key`` is a plain name or a ``YYYY-MM-DD`` day, optionally prefixed by a table name
        and ``/`` (e.g. ``predictions/2026-09-01``).
        """
        checked_name(model, "model name")
        _checked_table(kind, DOCUMENT_KINDS)
        parts = key.split("/")
        if not 1 <= len(parts) <= 2:
            raise LakeError(f"invalid document key {key!r}")
        checked = [
            checked_name(part, "document key") if not part[:1].isdigit() else checked_day(part).isoformat()
            for part in parts
        ]
        return self.root / model / kind / Path(*checked[:-1]) / f"{checked[-1]}.json"

    @staticmethod
    def write_file(path: Path, data: bytes) -> Path:
        """Replace a non-table lake file (a figure, a document) atomically."""
        return _replaced(path, lambda temporary: temporary.write_bytes(data))

    @staticmethod
    def write_document(path: Path, document: object) -> Path:
        """Replace a JSON document atomically, compact and strict (no NaN, which JSON readers refuse)."""
        return Lake.write_file(path, (json.dumps(document, separators=(",", ":"), allow_nan=False) + "\n").encode())

    @staticmethod
    def row_count(path: Path) -> int:
        """Rows in a lake file from its Parquet footer (0 when it was never written)."""
        if not path.exists():
            return 0
        try:
            return pq.ParquetFile(path).metadata.num_rows
        except (OSError, pa.ArrowException) as exc:
            raise LakeError(f"cannot read lake partition {path}: {exc}") from exc

    def upsert_partition(
        self, model: str, table: str, day: str | dt.date, data: pa.Table, keys: tuple[str, ...]
    ) -> Path:
        """Replace the partition's rows whose ``keys`` match a row of ``data``, add the others, atomically.

        For small tables whose records change after they are written (incidents closed, actions
        approved). The read-modify-write holds an exclusive lock on the partition, so two runs
        recording at once (an incident opened while another closes) never lose an update.
        """
        path = self.partition_path(model, table, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(f".{path.name}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            old = _read(path)
            if old is None:
                return _replace_atomically(path, data)
            new_keys = {tuple(row[k] for k in keys) for row in data.select(list(keys)).to_pylist()}
            kept = [row for row in old.to_pylist() if tuple(row[k] for k in keys) not in new_keys]
            merged = pa.concat_tables([pa.Table.from_pylist(kept, schema=data.schema), data])
            return _replace_atomically(path, merged)

    @contextmanager
    def locked(self, model: str, what: str, on_wait: Callable[[Path], None] | None = None) -> Iterator[None]:
        """Hold ``model``'s exclusive lock named ``what`` (``<lake>/<model>/.locks/<what>.lock``) for the block.

        For work whose check and write must not interleave with another process's or thread's:
        handling an incident (is it open, was its action taken, was its owner told), a pipeline
        run of the model from the command line. ``on_wait(lock_file)`` is called once when
        someone else holds it, before waiting for them. The operating system drops the lock of a
        process that dies, so a killed run never leaves the model locked.
        """
        path = self.root / checked_name(model, "model name") / ".locks" / f"{checked_name(what, 'lock name')}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait(path)
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def serving_path(self, model: str) -> Path:
        """The serving control file a model's service reads: ``<lake>/serving/<model>.json``."""
        return self.root / "serving" / f"{checked_name(model, 'model name')}.json"


def conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` as ``schema``; a column the schema gained since the file was written reads as nulls."""
    for field in schema:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(schema.names).cast(schema)


def _replace_atomically(final: Path, data: pa.Table, row_group_rows: int | None = None) -> Path:
    """Write zstd Parquet to a temporary file beside ``final``, then rename it over ``final``."""
    return _replaced(
        final, lambda temporary: pq.write_table(data, temporary, compression="zstd", row_group_size=row_group_rows)
    )


def _replaced(final: Path, write: Callable[[Path], object]) -> Path:
    """``write`` a temporary file beside ``final`` and rename it over ``final``: readers see the old file or
    the new one, never a part. A full disk or an unwritable lake leaves no temporary file and names ``final``."""
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        write(temporary)
        os.replace(temporary, final)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise LakeError(
            f"cannot write lake file {final}: {exc}; free space on the lake's disk or make {final.parent} "
            "writable, then run again (the file is as it was before)"
        ) from exc
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return final


def _read(path: Path, columns: list[str] | None = None) -> pa.Table | None:
    if not path.exists():
        return None
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise LakeError(f"cannot read lake partition {path}: {exc}") from exc


def _read_existing(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A partition file that was listed a moment ago; LakeError if it has gone since."""
    table = _read(path, columns)
    if table is None:
        raise LakeError(f"lake partition {path} disappeared while it was read; run again")
    return table
