"""The baseline: what a model's inputs and outputs looked like while they were known to be good.

Drift is measured against a frozen baseline, never a moving one: its bin edges and top values
fix the buckets every daily profile counts into, and its own profile is the reference
distribution. A baseline is frozen from the registry's baseline window (or from a training set,
to measure training-serving skew), saved as a JSON document whose name never changes meaning
(the content hash travels with every profile made on it), and loaded back by later runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from closedloop.core.lake import Lake, LakeError
from closedloop.core.specs import ModelSpec
from closedloop.core.sql import connect, query
from closedloop.drift.profiles import MERGED_SCHEMA, merge_profiles, profile_predictions

BINS = 20  # quantile bins per numeric column (fewer when values repeat), plus under/overflow
TOP_VALUES = 50  # categorical values counted one by one; the rest are "other" or "unseen"
MAX_KNOWN_VALUES = 100_000  # values remembered per column to tell "other" from "unseen"
FORMAT = 1
REFERENCE_VERSION = "reference"  # model_version of training-set rows that carry none


@dataclass(frozen=True)
class NumericBaseline:
    """A numeric column, the score or the decision in the baseline.

    A profile's bucket 0 counts values below ``edges[0]``, bucket i values in
    ``[edges[i-1], edges[i])`` and the last bucket values at or above ``edges[-1]``: the edges are
    the baseline's quantiles, its maximum nudged up, and (for the score) every version's threshold.
    """

    edges: tuple[float, ...]
    mean: float | None
    std: float | None
    missing_rate: float


@dataclass(frozen=True)
class CategoricalBaseline:
    """A categorical feature or segment in the baseline: its top values and every value it took, with counts."""

    top: tuple[str, ...]
    known: dict[str, int]  # most frequent first
    missing_rate: float

    @property
    def counts(self) -> np.ndarray:
        """How often the baseline held each value it saw."""
        return np.fromiter(self.known.values(), dtype=np.int64, count=len(self.known))


@dataclass(frozen=True)
class Baseline:
    """A frozen baseline: bucket definitions per column, plus the baseline's own merged profile."""

    model: str
    name: str
    source: dict[str, str]
    rows: int
    numeric: dict[str, NumericBaseline]
    categorical: dict[str, CategoricalBaseline]
    hash: str
    profile: pa.Table  # profiles.MERGED_SCHEMA, one row per column, model_version "all"

    def require_model(self, model: ModelSpec) -> None:
        """Refuse to measure one model's data against another model's baseline."""
        if self.model != model.name:
            raise ValueError(f"baseline {self.name!r} belongs to model {self.model!r}, not {model.name!r}")

    def to_json(self) -> str:
        """The document as saved: content, hash and profile (compact: the sketches hold thousands of registers)."""
        document = {"format": FORMAT, "name": self.name, **_content(self), "hash": self.hash}
        document["profile"] = self.profile.to_pylist()
        return json.dumps(document, separators=(",", ":"), allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Baseline:
        document = json.loads(text)
        if document.get("format") != FORMAT:
            raise ValueError(f"unsupported baseline format {document.get('format')!r}; expected {FORMAT}")
        baseline = cls(
            model=document["model"],
            name=document["name"],
            source=document["source"],
            rows=document["rows"],
            numeric={
                c: NumericBaseline(
                    edges=tuple(s["edges"]), mean=s["mean"], std=s["std"], missing_rate=s["missing_rate"]
                )
                for c, s in document["numeric"].items()
            },
            categorical={
                c: CategoricalBaseline(top=tuple(s["top"]), known=s["known"], missing_rate=s["missing_rate"])
                for c, s in document["categorical"].items()
            },
            hash=document["hash"],
            profile=pa.Table.from_pylist(document["profile"], schema=MERGED_SCHEMA),
        )
        if _hash(baseline) != baseline.hash:
            raise ValueError(
                f"baseline {baseline.name!r} does not match its hash {baseline.hash}: the document was edited"
            )
        return baseline


def freeze_baseline(
    lake: Lake, model: ModelSpec, *, reference: Path | None = None, name: str | None = None
) -> Baseline:
    """Freeze the model's baseline from its registry window's predictions, or from a reference dataset.

    ``reference`` (default: the registry's ``baseline.reference``) is a Parquet file or folder
    with closedloop's column names, e.g. the training set; columns it lacks (often the score and
    decision) get no baseline and are not watched. ``name`` defaults to the source kind and the
    content hash, so freezing the same data twice gives the same baseline.
    """
    reference = reference or model.baseline.reference
    if reference is not None:
        files = sorted(Path(reference).rglob("*.parquet")) if Path(reference).is_dir() else [Path(reference)]
        source = {"kind": "reference", "path": str(reference)}
    else:
        files = lake.partition_files(model.name, "predictions", model.baseline.start, model.baseline.end)
        source = {"kind": "window", "start": model.baseline.start.isoformat(), "end": model.baseline.end.isoformat()}
    described = (
        f"the reference {reference}"
        if reference is not None
        else (f"the window {model.baseline.start}..{model.baseline.end}")
    )
    if not files:
        raise LakeError(
            f"no data to freeze the {model.name} baseline from ({described}); ingest the baseline window first"
        )
    with connect() as con:
        relation = con.read_parquet([str(f) for f in files])
        if "model_version" not in relation.columns:
            relation = relation.select(
                duckdb.StarExpression(), duckdb.ConstantExpression(REFERENCE_VERSION).alias("model_version")
            )
        con.register("predictions", relation)
        available = set(relation.columns)
        numeric = [c for c in model.features.numeric + ("score", "decision") if c in available]
        categorical = [c for c in model.features.categorical + model.segments if c in available]
        [(rows,)] = con.execute("SELECT count(*) FROM predictions").fetchall()
        if not rows:
            raise LakeError(
                f"no rows to freeze the {model.name} baseline from ({described}): its {len(files)} file(s) hold no "
                "accepted predictions; land and ingest the baseline's predictions first"
            )
        frame = Baseline(
            model=model.name,
            name="",
            source=source,
            rows=rows,
            numeric=_numeric_baselines(con, model, numeric),
            categorical=_categorical_baselines(con, categorical, rows),
            hash="",
            profile=MERGED_SCHEMA.empty_table(),
        )
        frame = dataclasses.replace(frame, hash=_hash(frame))
        profile = merge_profiles([profile_predictions(con, frame, model.baseline.start)], across_versions=True)
    return dataclasses.replace(frame, name=name or f"{source['kind']}_{frame.hash}", profile=profile)


def save_baseline(lake: Lake, baseline: Baseline) -> Path:
    """Write the baseline under its name; a name already used for other content is refused."""
    path = lake.document_path(baseline.model, "baselines", baseline.name)
    if path.exists():
        existing = Baseline.from_json(path.read_text())
        if existing.hash != baseline.hash:
            raise ValueError(
                f"{path}: baseline {baseline.name!r} already holds other content (hash {existing.hash}); "
                "freeze the new baseline under a new name, so that earlier profiles keep their meaning"
            )
    return lake.write_file(path, baseline.to_json().encode())


def load_baseline(lake: Lake, model: str, name: str) -> Baseline:
    """A saved baseline by name."""
    path = lake.document_path(model, "baselines", name)
    if not path.exists():
        raise LakeError(f"{path}: no baseline named {name!r} for {model}; freeze and save it first")
    return Baseline.from_json(path.read_text())


def _numeric_baselines(
    con: duckdb.DuckDBPyConnection, model: ModelSpec, columns: list[str]
) -> dict[str, NumericBaseline]:
    params = {"numeric": columns, "quantiles": [i / BINS for i in range(BINS)]}
    stats = {row[0]: row[1:] for row in con.execute(query(__package__, "baseline_numeric"), params).fetchall()}
    thresholds = [spec.threshold for spec in model.versions.values()]
    baselines = {}
    for column in columns:
        rows, count, mean, std, maximum, quantiles = stats[column]
        # The top edge sits just above the maximum, so the baseline itself never overflows.
        edges = set(quantiles or ()) | ({math.nextafter(maximum, math.inf)} if count else set())
        if column == "score":
            edges |= set(thresholds)  # exact shares above each version's threshold
        baselines[column] = NumericBaseline(
            edges=tuple(sorted(float(e) for e in edges)),
            mean=mean,
            std=std if std is None or math.isfinite(std) else None,
            missing_rate=(rows - count) / rows if rows else 0.0,
        )
    return baselines


def _categorical_baselines(
    con: duckdb.DuckDBPyConnection, columns: list[str], rows: int
) -> dict[str, CategoricalBaseline]:
    params = {"categorical": columns, "max_known": MAX_KNOWN_VALUES}
    known: dict[str, dict[str, int]] = {c: {} for c in columns}
    nulls = dict.fromkeys(columns, 0)
    for column, value, n in con.execute(query(__package__, "baseline_values"), params).fetchall():
        if value is None:
            nulls[column] = n
        else:
            known[column][value] = n
    return {
        c: CategoricalBaseline(
            top=tuple(list(known[c])[:TOP_VALUES]), known=known[c], missing_rate=nulls[c] / rows if rows else 0.0
        )
        for c in columns
    }


def _content(baseline: Baseline) -> dict:
    """What the baseline means, without its name and profile (the profile follows from it and the data)."""
    return {
        "model": baseline.model,
        "source": baseline.source,
        "rows": baseline.rows,
        "numeric": {c: {**dataclasses.asdict(s), "edges": list(s.edges)} for c, s in baseline.numeric.items()},
        "categorical": {c: {**dataclasses.asdict(s), "top": list(s.top)} for c, s in baseline.categorical.items()},
    }


def _hash(baseline: Baseline) -> str:
    """Hash of what the buckets mean; means and stds are left out: DuckDB's parallel float sums
    differ in their last digits from run to run, and the same data must freeze the same baseline."""
    content = _content(baseline)
    for stats in content["numeric"].values():
        del stats["mean"], stats["std"]
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def baseline_name(model: ModelSpec) -> str:
    """The name of the baseline the registry asks for: its window, or its reference dataset."""
    if model.baseline.reference is not None:
        digest = hashlib.sha256(str(model.baseline.reference).encode()).hexdigest()[:12]
        return f"reference_{digest}"
    return f"window_{model.baseline.start:%Y%m%d}_{model.baseline.end:%Y%m%d}"


def current_baseline(lake: Lake, model: ModelSpec) -> Baseline:
    """The registry's baseline: loaded if it was frozen before, else frozen now and saved.

    Frozen once, it stays: later profiles keep comparing against the same bins and values
    even if the baseline window's partitions are re-ingested. Changing the registry's window
    (or reference) names a new baseline.
    """
    name = baseline_name(model)
    if lake.document_path(model.name, "baselines", name).exists():
        return load_baseline(lake, model.name, name)
    baseline = freeze_baseline(lake, model, name=name)
    save_baseline(lake, baseline)
    return baseline
