"""Writing simulated tables to the landing layout.

Layout (Hive partitioned, one folder per UTC date)::

    <out>/<model>/predictions/date=YYYY-MM-DD/part-NN.parquet   (date of the prediction)
    <out>/<model>/labels/date=YYYY-MM-DD/part-00.parquet        (date the label arrived)
    <out>/<model>/shadow/date=YYYY-MM-DD/part-00.parquet        (shadow scores, days with shadow traffic)

Labels are buffered by arrival date in a :class:`LandingWriter` and written once that date has
been simulated; labels that would arrive after the last simulated day are dropped (they have not
arrived yet when the simulation stops).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from closedloop.core.lake import Landing
from closedloop.simulator.incidents import IncidentSchedule
from closedloop.simulator.sampling import US_PER_DAY, day_rng, day_start_us, shadow_rng, split_rng, timestamps

PREDICTIONS = "predictions"
LABELS = "labels"
SHADOW = "shadow"
COMPRESSION = "zstd"


def write_part(table: pa.Table, out: Path, model: str, kind: str, day: dt.date, part: int) -> Path:
    """Write ``table`` as ``part-NN.parquet`` of the ``kind`` partition for ``day``."""
    folder = Landing(out).partition_dir(model, kind, day)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{part:02d}.parquet"
    pq.write_table(table, path, compression=COMPRESSION)
    return path


def reset_model_dir(out: Path, model: str) -> None:
    """Delete ``<out>/<model>/`` so a new run replaces, never merges with, the previous one."""
    target = Landing(out).model_dir(model)
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)


class LandingWriter:
    """Writes one model's predictions by day and its labels by arrival day.

    ``label_columns`` names the (id, label, label timestamp) columns in the model's own naming.
    """

    def __init__(
        self,
        out: Path,
        model: str,
        start: dt.date,
        days: int,
        label_columns: tuple[str, str, str],
    ) -> None:
        self.out = Path(out)
        self.model = model
        self.start = start
        self.days = days
        self.label_columns = label_columns
        self.rows = {PREDICTIONS: 0, LABELS: 0}
        self._start_us = day_start_us(start)
        self._pending: dict[int, list[tuple[pa.Array, np.ndarray, np.ndarray]]] = {}
        reset_model_dir(self.out, model)

    def date(self, day: int) -> dt.date:
        return self.start + dt.timedelta(days=day)

    def write_predictions(self, day: int, parts: list[pa.Table]) -> None:
        for i, part in enumerate(parts):
            write_part(part, self.out, self.model, PREDICTIONS, self.date(day), i)
            self.rows[PREDICTIONS] += part.num_rows

    def write_shadow(self, day: int, table: pa.Table) -> None:
        """The day's scores of a version in shadow (counted only for models that have some)."""
        write_part(table, self.out, self.model, SHADOW, self.date(day), 0)
        self.rows[SHADOW] = self.rows.get(SHADOW, 0) + table.num_rows

    def add_labels(self, day: int, ids: pa.Array, labels: np.ndarray, label_ts_us: np.ndarray) -> None:
        """Queue labels for predictions of ``day``; each goes to the folder of its arrival date."""
        arrival = (np.asarray(label_ts_us) - self._start_us) // US_PER_DAY
        if len(arrival) and arrival.min() <= day:
            raise ValueError("labels must arrive after the day of their prediction")
        for a in np.unique(arrival):
            if a >= self.days:  # not arrived yet when the simulation stops
                continue
            sel = np.flatnonzero(arrival == a)
            self._pending.setdefault(int(a), []).append((ids.take(pa.array(sel)), labels[sel], label_ts_us[sel]))

    def end_day(self, day: int) -> None:
        """Write the labels that arrived on ``day`` (all of them are known by now)."""
        pieces = self._pending.pop(day, None)
        if not pieces:
            return
        ids = pa.concat_arrays([p[0] for p in pieces])
        labels = np.concatenate([p[1] for p in pieces])
        label_ts = np.concatenate([p[2] for p in pieces])
        order = np.argsort(label_ts, kind="stable")
        id_col, label_col, ts_col = self.label_columns
        table = pa.table(
            {
                id_col: ids.take(pa.array(order)),
                label_col: pa.array(labels[order].astype(np.int8), type=pa.int8()),
                ts_col: timestamps(label_ts[order]),
            }
        )
        write_part(table, self.out, self.model, LABELS, self.date(day), 0)
        self.rows[LABELS] += table.num_rows

    def close(self) -> None:
        if self._pending:  # only possible if end_day was skipped for a simulated day
            raise RuntimeError(f"unwritten label days for {self.model}: {sorted(self._pending)}")


class ModelGenerator:
    """Base of the per-model generators: one call of :meth:`simulate_day` per day, in order.

    Subclasses set ``model``, ``model_index`` (part of every random seed) and ``label_columns``,
    and implement :meth:`simulate_day`, which writes the day's predictions, queues their labels
    and ends with ``self.writer.end_day(day)``.
    """

    model: str
    model_index: int
    label_columns: tuple[str, str, str]

    def __init__(
        self,
        out: Path,
        seed: int,
        start: dt.date,
        days: int,
        rows_per_day: int,
        incidents: IncidentSchedule,
    ) -> None:
        self.seed = seed
        self.start = start
        self.rows_per_day = rows_per_day
        self.incidents = incidents
        self.writer = LandingWriter(out, self.model, start, days, self.label_columns)

    @property
    def rows(self) -> dict[str, int]:
        """Rows written so far, per table."""
        return dict(self.writer.rows)

    def rng(self, day: int) -> np.random.Generator:
        return day_rng(self.seed, self.model_index, day)

    def shadow_rng(self, day: int) -> np.random.Generator:
        return shadow_rng(self.seed, self.model_index, day)

    def split_rng(self, day: int) -> np.random.Generator:
        return split_rng(self.seed, self.model_index, day)

    def date(self, day: int) -> dt.date:
        return self.writer.date(day)

    def simulate_day(self, day: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.writer.close()
