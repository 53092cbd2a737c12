"""The model registry: which models closedloop watches and everything it must know about each.

The registry is data (``config/models.yaml``), loaded once into typed objects. A mistake in it
is reported with the file and the dotted path of the bad key, so that the owner of the YAML can
fix it without reading closedloop's code.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from closedloop.names import NAME_PATTERN

CANONICAL_PREDICTION_COLUMNS = (
    "prediction_id",
    "model_version",
    "ts",
    "score",
    "decision",
    "latency_ms",
    "cost_usd",
    "route",
    "is_fallback",
    "error",
)
CANONICAL_LABEL_COLUMNS = ("label", "label_ts")
CANONICAL_COLUMNS = CANONICAL_PREDICTION_COLUMNS + CANONICAL_LABEL_COLUMNS

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
# Dagster accepts an email address or "team:<name>" as an owner.
OWNER_PATTERN = r"^(team:[A-Za-z0-9_.-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$"
Owner = Annotated[str, StringConstraints(pattern=OWNER_PATTERN)]


class RegistryError(ValueError):
    """The registry file cannot be used; the message names the file and the bad keys."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LabelSource(_Strict):
    source: str
    maturity_days: int = Field(ge=0, description="Days after which a prediction's label is considered final.")


class VersionSpec(_Strict):
    threshold: float = Field(ge=0.0, le=1.0)
    released: dt.date | None = None


class FeatureSpec(_Strict):
    numeric: tuple[Name, ...] = ()
    categorical: tuple[Name, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return self.numeric + self.categorical


class BaselineWindow(_Strict):
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> BaselineWindow:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class EvaluationSpec(_Strict):
    windows_days: tuple[Annotated[int, Field(ge=1, le=366)], ...] = (7, 30)


class ColumnContract(_Strict):
    """Overrides of the learned contract for one feature or segment column."""

    max_null_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    new_value_share: float | None = Field(default=None, ge=0.0, le=1.0)
    range_margin: float | None = Field(default=None, ge=0.0)


class ContractSpec(_Strict):
    """How strict the input contract is; the bounds themselves are learned from the baseline window."""

    max_quarantine_share: float = Field(
        default=0.01, ge=0.0, le=1.0, description="Share of a partition's rows that may be quarantined before ingest is blocked."
    )
    null_rate_margin: float = Field(
        default=0.05, ge=0.0, le=1.0, description="A column's null-rate ceiling is its baseline null rate plus this."
    )
    range_margin: float = Field(
        default=0.25, ge=0.0, description="Numeric bounds are the baseline min/max widened by this share of the range."
    )
    out_of_range_share: float = Field(default=0.01, ge=0.0, le=1.0, description="Share of values allowed outside the bounds.")
    new_value_share: float = Field(
        default=0.05, ge=0.0, le=1.0, description="Share of categorical values never seen in the baseline that is tolerated."
    )
    max_unknown_label_share: float = Field(
        default=0.01, ge=0.0, le=1.0, description="Share of a day's labels whose prediction is not in the lake yet."
    )
    severity: Literal["warn", "error"] = Field(
        default="warn", description="Severity of the distribution checks (null rates, ranges, new values); error blocks."
    )
    columns: dict[Name, ColumnContract] = Field(default_factory=dict)


class ProductionMetric(_Strict):
    """A number the model's owners watch in production, with who owns it and how often it moves."""

    name: Name
    kind: Literal["business", "quality", "operational"]
    source: str
    cadence: Literal["hourly", "daily"]
    owner: Owner
    description: str = ""
    sql: str | None = Field(default=None, description="DuckDB SQL aggregate over the source table, for business metrics.")


class RunbookAction(_Strict):
    type: Literal["notify", "rollback", "dial", "fallback", "recalibrate"]
    mode: Literal["auto", "propose"] = "propose"
    params: dict[str, object] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _dial_has_weights(self) -> RunbookAction:
        if self.type == "dial":
            weights = self.params.get("weights")
            if not isinstance(weights, dict) or not weights:
                raise ValueError("a 'dial' action needs params.weights, e.g. {v11: 0.9, v12: 0.1}")
            if abs(sum(float(w) for w in weights.values()) - 1.0) > 1e-6:
                raise ValueError(f"params.weights must sum to 1, got {weights}")
        return self


class SLOSpec(_Strict):
    """A promise about one production metric: breached after ``for`` consecutive bad periods."""

    name: Name
    metric: Name
    comparison: Literal["<", "<=", ">", ">="] | None = None
    threshold: float | None = None
    band: tuple[float, float] | None = None
    for_periods: int = Field(default=1, ge=1, alias="for")
    recovery_periods: int = Field(default=1, ge=1)
    severity: Literal["warn", "page"]
    owner: Owner | None = None
    action: RunbookAction = Field(default_factory=lambda: RunbookAction(type="notify"))

    @model_validator(mode="after")
    def _one_kind_of_bound(self) -> SLOSpec:
        has_threshold = self.comparison is not None or self.threshold is not None
        if has_threshold and self.band is not None:
            raise ValueError("give either comparison + threshold or band, not both")
        if self.band is None and (self.comparison is None or self.threshold is None):
            raise ValueError("needs comparison and threshold (e.g. comparison: '>=', threshold: 0.8) or band: [low, high]")
        if self.band is not None and self.band[0] > self.band[1]:
            raise ValueError(f"band low {self.band[0]} is above high {self.band[1]}")
        return self


class ModelSpec(_Strict):
    """Everything closedloop knows about one deployed model."""

    name: Name
    description: str = ""
    owner: Owner
    tags: dict[str, str] = Field(default_factory=dict)
    task: Literal["binary"] = "binary"
    start_date: dt.date = Field(description="First day of the prediction log; the daily partitions start here.")
    labels: LabelSource
    versions: dict[Name, VersionSpec] = Field(min_length=1)
    columns: dict[str, str] = Field(
        default_factory=dict, description="closedloop column name -> the name used in the model's own log."
    )
    features: FeatureSpec = Field(default_factory=FeatureSpec)
    segments: tuple[Name, ...] = ()
    baseline: BaselineWindow
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    contract: ContractSpec = Field(default_factory=ContractSpec)
    metrics: tuple[ProductionMetric, ...] = ()
    slos: tuple[SLOSpec, ...] = ()

    @field_validator("columns")
    @classmethod
    def _known_canonical_columns(cls, columns: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(columns) - set(CANONICAL_COLUMNS))
        if unknown:
            raise ValueError(f"unknown closedloop column(s) {unknown}; mappable columns are {list(CANONICAL_COLUMNS)}")
        sources = list(columns.values())
        repeated = sorted({s for s in sources if sources.count(s) > 1})
        if repeated:
            raise ValueError(f"source column(s) {repeated} are mapped more than once")
        return columns

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        problems = []
        declared = list(self.features.all) + list(self.segments)
        repeated = sorted({c for c in declared if declared.count(c) > 1})
        if repeated:
            problems.append(f"column(s) {repeated} declared more than once across features and segments")
        clashes = sorted(set(declared) & set(CANONICAL_COLUMNS))
        if clashes:
            problems.append(f"feature/segment column(s) {clashes} clash with closedloop's own column names")
        metric_names = [m.name for m in self.metrics]
        if len(set(metric_names)) != len(metric_names):
            problems.append("metric names must be unique")
        if not 3 <= len(self.metrics) <= 5 and self.metrics:
            problems.append(f"declare 3 to 5 production metrics, got {len(self.metrics)}")
        for slo in self.slos:
            if slo.metric not in metric_names:
                problems.append(f"SLO {slo.name!r} watches unknown metric {slo.metric!r}; declared metrics: {metric_names}")
        slo_names = [s.name for s in self.slos]
        if len(set(slo_names)) != len(slo_names):
            problems.append("SLO names must be unique")
        unknown_overrides = sorted(set(self.contract.columns) - set(self.features.all + self.segments))
        if unknown_overrides:
            problems.append(f"contract.columns names {unknown_overrides}, which are not features or segments")
        if self.baseline.start < self.start_date:
            problems.append(f"baseline starts {self.baseline.start}, before the model's start_date {self.start_date}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def source_column(self, canonical: str) -> str:
        """The name the model's own log uses for one of closedloop's columns."""
        return self.columns.get(canonical, canonical)

    def threshold(self, version: str) -> float | None:
        spec = self.versions.get(version)
        return spec.threshold if spec else None


class Registry(_Strict):
    """The whole registry: where data lands, where the lake is, and the models."""

    path: Path
    landing: Path
    lake: Path
    models: dict[str, ModelSpec]

    def model(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise RegistryError(f"{self.path}: no model named {name!r}; known models: {sorted(self.models)}") from None


class _RegistryFile(_Strict):
    landing: Path = Path("landing")
    lake: Path = Path("lake")
    models: dict[Name, dict] = Field(min_length=1)


_PATTERN_MEANINGS = {
    NAME_PATTERN: "not a valid name: use letters, digits and underscores, starting with a letter (at most 64)",
    OWNER_PATTERN: "not a valid owner: use an email address or team:<name>",
}


def _describe(error: ValidationError, prefix: tuple = ()) -> str:
    lines = []
    for problem in error.errors():
        location = tuple(part for part in prefix + tuple(problem["loc"]) if part != "[key]")
        where = ".".join(str(part) for part in location) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key (check its spelling)"
        elif problem["type"] == "string_pattern_mismatch":
            pattern = problem.get("ctx", {}).get("pattern")
            message = f"{problem['input']!r} is " + _PATTERN_MEANINGS.get(pattern, message)
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def load_registry(path: str | os.PathLike, *, landing: str | None = None, lake: str | None = None) -> Registry:
    """Read and validate a registry file; ``landing``/``lake`` override the file's roots."""
    path = Path(path).resolve()
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RegistryError(f"{path}: registry file not found (set --config or CLOSEDLOOP_CONFIG)") from None
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise RegistryError(f"{path}: expected a mapping with a 'models' key at the top level")
    try:
        top = _RegistryFile.model_validate(raw)
    except ValidationError as exc:
        raise RegistryError(f"{path}: invalid registry\n{_describe(exc)}") from None

    models: dict[str, ModelSpec] = {}
    problems = []
    for name, body in top.models.items():
        try:
            models[name] = ModelSpec.model_validate({"name": name, **body})
        except ValidationError as exc:
            problems.append(_describe(exc, ("models", name)))
    if problems:
        raise RegistryError(f"{path}: invalid registry\n" + "\n".join(problems))

    base = path.parent
    return Registry(
        path=path,
        landing=(base / (landing or top.landing)).resolve(),
        lake=(base / (lake or top.lake)).resolve(),
        models=models,
    )


DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "models.yaml"


def registry_from_environment(config: str | os.PathLike | None = None) -> Registry:
    """The registry named by ``config``, else ``CLOSEDLOOP_CONFIG``, else the project's own."""
    path = config or os.environ.get("CLOSEDLOOP_CONFIG") or DEFAULT_CONFIG
    return load_registry(path, landing=os.environ.get("CLOSEDLOOP_LANDING"), lake=os.environ.get("CLOSEDLOOP_LAKE"))
