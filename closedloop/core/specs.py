"""The registry's schema: which models closedloop watches and everything it must know about each.

The registry is data (``config/models.yaml``), loaded once into typed objects. A mistake in it
is reported with the file and the dotted path of the bad key, so that the owner of the YAML can
fix it without reading closedloop's code.

The whole schema is one module on purpose (about 500 lines): one place for what a registry may say.
``closedloop.registry.load_registry`` reads it and holds it to what closedloop computes.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import typing
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from closedloop.core.bounds import Bound, BoundType, LearnedLimits
from closedloop.core.names import NAME_PATTERN

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
# Dagster's rules for definition tags (keys with an optional namespace/, each part at most 63 characters).
TAG_KEY_PATTERN = r"^([A-Za-z0-9_.-]{1,63}/)?[A-Za-z0-9_.-]{1,63}$"
TAG_VALUE_PATTERN = r"^[A-Za-z0-9_.-]{0,63}$"
TagKey = Annotated[str, StringConstraints(pattern=TAG_KEY_PATTERN)]
TagValue = Annotated[str, StringConstraints(pattern=TAG_VALUE_PATTERN)]
MODEL_TAG_KEY = "model"  # closedloop tags every asset with its model's name


class RegistryError(ValueError):
    """The registry file cannot be used; the message names the file and the bad keys."""


class _Strict(BaseModel):
    # A NaN or infinite threshold would breach (or never breach) every period: numbers must be finite.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


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
    reference: Path | None = Field(
        default=None,
        description="A training set (Parquet file or folder, closedloop's column names) to freeze the baseline from "
        "instead of the window, to measure training-serving skew.",
    )
    trailing_days: int | None = Field(
        default=None,
        ge=1,
        le=365,
        description="Compare each day with the N days before it instead of the frozen window (bins and values stay "
        "the window's, so the comparison is still stable); for models whose inputs move slowly by design.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> BaselineWindow:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class EvaluationSpec(_Strict):
    windows_days: tuple[Annotated[int, Field(ge=1, le=366)], ...] = (7, 30)
    precision_at_k: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        default=(100,),
        description="Queue sizes K for precision@K: how many top-scored rows a team can review per window.",
    )
    approved_decision_rate: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Share of rows the owners approved acting on (e.g. the review queue's capacity); evaluation "
        "reports mark it and propose the threshold that keeps it.",
    )


class ColumnContract(_Strict):
    """Overrides of the learned contract for one feature or segment column."""

    max_null_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    new_value_share: float | None = Field(default=None, ge=0.0, le=1.0)
    range_margin: float | None = Field(default=None, ge=0.0)


class ContractSpec(_Strict):
    """How strict the input contract is; the bounds themselves are learned from the baseline window."""

    max_quarantine_share: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="Share of a partition's rows that may be quarantined before ingest is blocked.",
    )
    null_rate_margin: float = Field(
        default=0.05, ge=0.0, le=1.0, description="A column's null-rate ceiling is its baseline null rate plus this."
    )
    null_rate_sd: float = Field(
        default=3.0,
        gt=0.0,
        description="...or, when higher, this many standard deviations of the baseline days' own null rates above "
        "their mean: a feature joined from a source that sometimes leaves it empty moves by itself from day to day.",
    )
    range_margin: float = Field(
        default=0.25, ge=0.0, description="Numeric bounds are the baseline min/max widened by this share of the range."
    )
    out_of_range_share: float = Field(
        default=0.01, ge=0.0, le=1.0, description="Share of values allowed outside the bounds."
    )
    new_value_share: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Share of categorical values never seen in the baseline that is tolerated.",
    )
    max_unknown_label_share: float = Field(
        default=0.01, ge=0.0, le=1.0, description="Share of a day's labels whose prediction is not in the lake yet."
    )
    severity: Literal["warn", "error"] = Field(
        default="warn",
        description="Severity of the distribution checks (null rates, ranges, new values); error blocks.",
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
    sql: str | None = Field(
        default=None, description="DuckDB SQL aggregate over the source table, for business metrics."
    )


RUNBOOK_PARAMS = {
    "notify": (),
    "rollback": ("to",),
    "dial": ("weights",),
    "fallback": ("enabled",),
    "recalibrate": ("method", "window_days"),  # the incident job adds the fitted calibrator and threshold
}


class RunbookAction(_Strict):
    """What an incident does to the serving file: ``auto`` at once, ``propose`` after a person approves.

    ``rollback`` to the previous version (or ``params.to``); ``dial`` traffic to ``params.weights``;
    ``fallback`` (kill switch; ``params.enabled: false`` turns it off again); ``recalibrate``
    (``params.method``: isotonic or platt, ``params.window_days`` of matured labels to fit on).
    """

    type: Literal["notify", "rollback", "dial", "fallback", "recalibrate"]
    mode: Literal["auto", "propose"] = "propose"
    params: dict[str, object] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _params_fit_the_type(self) -> RunbookAction:
        allowed = set(RUNBOOK_PARAMS[self.type]) | (
            {"calibrator", "threshold"} if self.type == "recalibrate" else set()
        )
        unknown = sorted(set(self.params) - allowed)
        if unknown:
            raise ValueError(f"a {self.type!r} action takes params {list(RUNBOOK_PARAMS[self.type])}, not {unknown}")
        if self.type == "dial":
            weights = self.params.get("weights")
            if not isinstance(weights, dict) or not weights:
                raise ValueError("a 'dial' action needs params.weights, e.g. {v11: 0.9, v12: 0.1}")
            if not all(isinstance(w, int | float) and not isinstance(w, bool) for w in weights.values()):
                raise ValueError(f"params.weights must be numbers (shares of traffic), got {weights}")
            if not all(math.isfinite(w) and w >= 0 for w in weights.values()):
                raise ValueError(f"params.weights must be shares from 0 to 1, got {weights}")
            if abs(sum(float(w) for w in weights.values()) - 1.0) > 1e-6:
                raise ValueError(f"params.weights must sum to 1, got {weights}")
        if self.type == "rollback" and not isinstance(self.params.get("to", ""), str):
            raise ValueError(f"params.to must be a version name, got {self.params['to']!r}")
        if self.type == "fallback" and not isinstance(self.params.get("enabled", True), bool):
            raise ValueError(f"params.enabled must be true or false, got {self.params['enabled']!r}")
        if self.type == "recalibrate":
            if self.params.get("method", "isotonic") not in ("isotonic", "platt"):
                raise ValueError(f"params.method must be isotonic or platt, got {self.params['method']!r}")
            days = self.params.get("window_days", 30)
            if not isinstance(days, int) or not 1 <= days <= 366:
                raise ValueError(f"params.window_days must be a whole number of days from 1 to 366, got {days!r}")
        return self


class SLOBound(_Strict):
    """An SLO's bound as written: ``comparison`` + ``threshold``, or a ``band``."""

    comparison: Literal["<", "<=", ">", ">="] | None = None
    threshold: float | None = None
    band: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _one_kind_of_bound(self) -> SLOBound:
        has_threshold = self.comparison is not None or self.threshold is not None
        if has_threshold and self.band is not None:
            raise ValueError("give either comparison + threshold or band, not both")
        if has_threshold and (self.comparison is None or self.threshold is None):
            raise ValueError("needs both comparison and threshold (e.g. comparison: '>=', threshold: 0.8)")
        if self.band is not None and self.band[0] > self.band[1]:
            raise ValueError(f"band low {self.band[0]} is above high {self.band[1]}")
        return self

    @property
    def written(self) -> bool:
        return self.band is not None or self.threshold is not None

    @property
    def bound(self) -> Bound:
        """The promise as a bound: its one level is the error level, the SLO's severity says who is woken."""
        if self.band is not None:
            return Bound(type="band", error=self.band)
        kind: BoundType = "lower" if self.comparison in (">", ">=") else "upper"
        return Bound(type=kind, error=self.threshold, strict=self.comparison in ("<", ">"))


class SLOSpec(SLOBound):
    """A promise about one production metric: breached after ``for`` consecutive bad periods."""

    name: Name
    metric: Name
    learned: LearnedLimits | None = Field(
        default=None,
        description="Limits learned from each subject's own reference (a version's first days, its shadow days, or "
        "the trailing days) instead of a written threshold or band.",
    )
    versions: dict[Name, SLOBound] = Field(
        default_factory=dict,
        description="With per_version: a version's own bound in place of the SLO's (a canary with its own "
        "threshold has a legitimately different decision rate).",
    )
    for_periods: int = Field(default=1, ge=1, alias="for")
    recovery_periods: int = Field(default=1, ge=1)
    severity: Literal["warn", "page"]
    owner: Owner | None = None
    action: RunbookAction = Field(default_factory=lambda: RunbookAction(type="notify"))
    per_version: bool = Field(
        default=False,
        description="Judge every model version on its own, each with its own state and incident, so a canary's "
        "collapse is not averaged away by the traffic still on the old version.",
    )
    per_route: bool = Field(
        default=False,
        description="For an ops.<metric> source: judge every serving route on its own, each with its own state and "
        "incident, so a slow fallback route is not averaged away by the primary's traffic.",
    )
    min_rows: int = Field(
        default=100,
        ge=1,
        description="A period (or, with per_version, a version's period) with fewer rows behind the value is not "
        "judged: a handful of rows is noise, not a breach.",
    )

    @model_validator(mode="after")
    def _bound_given(self) -> SLOSpec:
        if self.written and self.learned is not None:
            raise ValueError("give a written bound (comparison + threshold, or band) or learned limits, not both")
        if not self.written and self.learned is None:
            raise ValueError(
                "needs comparison and threshold (e.g. comparison: '>=', threshold: 0.8), band: [low, high], "
                "or learned limits (e.g. learned: {method: sd, k: 3, periods: 14})"
            )
        for version, override in self.versions.items():
            if not self.per_version:
                raise ValueError(f"versions.{version}: a version's own bound needs per_version: true")
            if not override.written:
                raise ValueError(f"versions.{version}: give comparison + threshold or band")
        return self

    def bound_for(self, version: str | None) -> Bound | None:
        """The written bound a version is held to (its own, else the SLO's); None for learned limits."""
        if version in self.versions:
            return self.versions[version].bound
        return None if self.learned is not None else self.bound

    def describe_bound(self) -> str:
        """The SLO's bound in a few words, each version's own one after it."""
        own = self.learned.describe() if self.learned is not None else self.bound.describe()
        others = "; ".join(f"{v} {o.bound.describe()}" for v, o in self.versions.items())
        return f"{own} ({others})" if others else own


# The output columns drift watches beside the features and segments.
DRIFT_OUTPUT_COLUMNS = ("score", "decision")


# closedloop's defaults; a model's ``drift.thresholds`` and ``drift.columns`` override them.
DEFAULT_DRIFT_LIMITS: dict[str, Bound] = {
    "mean_shift": Bound(type="absolute", warn=0.25, error=0.5),
    "missing_rate_delta": Bound(type="absolute", warn=0.02, error=0.05),
    "psi": Bound(type="upper", warn=0.1, error=0.25),
    "js_distance": Bound(type="upper", warn=0.1, error=0.2),
    "new_category_share": Bound(type="upper", warn=0.02, error=0.05),
    "cardinality_ratio": Bound(type="ratio", warn=1.5, error=2.0),
    "decision_rate_ratio": Bound(type="ratio", warn=1.5, error=2.0),
    "domain_classifier_auc": Bound(type="upper", warn=0.6, error=0.7),
}


class DriftSpec(_Strict):
    """How drift against the baseline is judged: limits are data, overridable per model and per column.

    A limit is a bound (``closedloop.core.bounds``: ``{type: upper|absolute|ratio, warn: x, error: y}``);
    one without ``warn`` and ``error`` turns the metric's alert off. Metric names are checked
    against the drift metrics when the registry is loaded. A column's limits win over the model's, which win
    over closedloop's defaults.
    """

    min_rows: int = Field(
        default=500, ge=1, description="A version's window with fewer rows is 'not enough data' and never alerts."
    )
    false_alert_rate: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="A figure past its limit alerts only when its Benjamini-Hochberg adjusted p-value, among the "
        "day's tests of the version, is at most this: the share of false alerts among the day's alerts accepted.",
    )
    version_reference_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description="A version released after the baseline window has its score and decision judged against its "
        "own first N days with rows (shadow days first), not the baseline; until then they are 'learning'.",
    )
    thresholds: dict[str, Bound] = Field(default_factory=dict, description="Metric -> limits for every column.")
    columns: dict[Name, dict[str, Bound]] = Field(
        default_factory=dict, description="Column (feature, segment, score, decision) -> metric -> limits."
    )
    learned: LearnedLimits | None = Field(
        default=None,
        description="Every figure's limit learned from the baseline days' own figures against the baseline (mean + "
        "k sd, or quantiles), in place of the written thresholds; a column's own written limits still win.",
    )

    @field_validator("learned")
    @classmethod
    def _learned_from_the_baseline(cls, learned: LearnedLimits | None) -> LearnedLimits | None:
        if learned is not None and learned.reference != "first":
            raise ValueError("reference: drift limits learn from the baseline's days (reference: first)")
        if learned is not None and learned.seasonal == "hour":
            raise ValueError("seasonal: drift is judged by the day; its season is the weekday (seasonal: weekday)")
        return learned

    @field_validator("thresholds")
    @classmethod
    def _finite(cls, limits: dict[str, Bound]) -> dict[str, Bound]:
        for metric, bound in limits.items():
            for level in ("warn", "error"):
                limit = getattr(bound, level)
                values = limit if isinstance(limit, tuple) else (limit,)
                if any(value is not None and not math.isfinite(value) for value in values):
                    raise ValueError(f"{metric}.{level}: {limit} is not a finite number")
        return limits

    @field_validator("columns")
    @classmethod
    def _finite_per_column(cls, columns: dict[str, dict[str, Bound]]) -> dict[str, dict[str, Bound]]:
        for limits in columns.values():
            cls._finite(limits)
        return columns

    def limit(self, metric: str, column: str) -> Bound | None:
        """The limits that judge ``metric`` on ``column``, or None when the metric is only reported."""
        for limits in (self.columns.get(column, {}), self.thresholds, DEFAULT_DRIFT_LIMITS):
            if metric in limits:
                return limits[metric]
        return None


Severity = Literal["warn", "page"]


GuardMetric = Literal["latency_p95_ms", "error_rate", "fallback_rate", "cost_per_1k"]


class RouteGuards(_Strict):
    """Ceilings for one route's own traffic; a missing ceiling is not checked."""

    max_latency_p95_ms: float | None = Field(default=None, gt=0)
    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    max_fallback_rate: float | None = Field(default=None, ge=0, le=1)
    max_cost_per_1k: float | None = Field(default=None, ge=0, description="US dollars per 1,000 predictions.")
    learned: dict[GuardMetric, LearnedLimits] = Field(
        default_factory=dict,
        description="Guard -> a ceiling learned from the trailing hours of the scope's own traffic that kept it, "
        "in place of its max_ field (only the upper limit applies; seasonal: hour for a day-and-night rhythm).",
    )

    @model_validator(mode="after")
    def _learned_or_written(self) -> RouteGuards:
        for guard, limits in self.learned.items():
            if getattr(self, f"max_{guard}") is not None:
                raise ValueError(f"learned.{guard}: give max_{guard} or learned limits, not both")
            if limits.reference != "trailing":
                raise ValueError(f"learned.{guard}.reference: a guard learns from its trailing hours (trailing)")
            if limits.seasonal == "weekday":
                raise ValueError(f"learned.{guard}.seasonal: an hourly guard's season is the hour of the day (hour)")
        return self


class OpsGuards(RouteGuards):
    """A model's operational guards, checked every hour; every ceiling is optional."""

    daily_budget_usd: float | None = Field(
        default=None, gt=0, description="Fails when the projected daily spend exceeds it."
    )
    min_requests_per_hour: int = Field(
        default=50, ge=1, description="Hours with fewer requests are 'not enough data' and never alert."
    )
    severity: Severity = "page"
    routes: dict[str, RouteGuards] = Field(default_factory=dict)


class ModelSpec(_Strict):
    """Everything closedloop knows about one deployed model."""

    name: Name
    description: str = ""
    owner: Owner
    tags: dict[TagKey, TagValue] = Field(default_factory=dict)
    task: Literal["binary"] = "binary"
    start_date: dt.date = Field(description="First day of the prediction log; the daily partitions start here.")
    end_date: dt.date | None = Field(
        default=None,
        description="Last day of the prediction log, for a retired model or a replayed history (the demo's): the "
        "daily partitions end here. Unset, they run to today and the schedules keep going.",
    )
    labels: LabelSource
    versions: dict[Name, VersionSpec] = Field(min_length=1)
    columns: dict[str, str] = Field(
        default_factory=dict, description="closedloop column name -> the name used in the model's own log."
    )
    features: FeatureSpec = Field(default_factory=FeatureSpec)
    segments: tuple[Name, ...] = ()
    pairing_key: Name | None = Field(
        default=None,
        description="A column of the prediction log that names the request (e.g. request_id), the same in the "
        "served log and the shadow log, so two versions that scored the same requests are compared pair by pair.",
    )
    baseline: BaselineWindow
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    contract: ContractSpec = Field(default_factory=ContractSpec)
    metrics: tuple[ProductionMetric, ...] = ()
    slos: tuple[SLOSpec, ...] = ()
    ops: OpsGuards = Field(default_factory=OpsGuards)
    drift: DriftSpec = Field(default_factory=DriftSpec)

    @field_validator("end_date")
    @classmethod
    def _ends_after_it_starts(cls, end: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("start_date")
        if end is not None and start is not None and end < start:
            raise ValueError(f"{end} is before start_date {start}; the log must have at least one day")
        return end

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

    @field_validator("pairing_key")
    @classmethod
    def _pairing_key_is_its_own_column(cls, key: str | None, info: ValidationInfo) -> str | None:
        # Declared after columns, features and segments, so those that validated are in info.data.
        if key is None:
            return key
        if key in CANONICAL_COLUMNS:
            raise ValueError(
                f"{key!r} is one of closedloop's own columns {list(CANONICAL_COLUMNS)}; name the log's request "
                "column (e.g. request_id), which must differ from prediction_id: each version's row has its own"
            )
        features = info.data.get("features", FeatureSpec())
        if key in features.all + info.data.get("segments", ()):
            raise ValueError(f"{key!r} is declared as a feature or segment; a request key is neither")
        if key in info.data.get("columns", {}).values():
            raise ValueError(f"{key!r} is mapped to one of closedloop's columns under columns; pick another column")
        return key

    @field_validator("tags")
    @classmethod
    def _model_tag_is_reserved(cls, tags: dict[str, str]) -> dict[str, str]:
        if MODEL_TAG_KEY in tags or any(key.startswith("dagster/") for key in tags):
            taken = next(key for key in tags if key == MODEL_TAG_KEY or key.startswith("dagster/"))
            raise ValueError(
                f"{taken!r} is closedloop's own tag (the model's name)"
                if taken == MODEL_TAG_KEY
                else f"{taken!r} is not a valid tag key: the dagster/ namespace is Dagster's own"
            )
        return tags

    @field_validator("segments", "versions")
    @classmethod
    def _all_is_reserved(cls, names):
        # Evaluation names the whole population segment 'all' and all versions pooled 'all'.
        if "all" in names:
            raise ValueError("'all' is reserved for the whole population (all rows, all versions); rename it")
        return names

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
        by_case: dict[str, set[str]] = {}
        for name in (*CANONICAL_COLUMNS, *declared, *([self.pairing_key] if self.pairing_key else [])):
            by_case.setdefault(name.lower(), set()).add(name)
        alike = sorted(sorted(names) for names in by_case.values() if len(names) > 1)
        if alike:
            problems.append(
                f"column names {alike} differ only in case; the SQL closedloop runs on (DuckDB) takes them for one "
                "column: rename one of each"
            )
        metric_names = [m.name for m in self.metrics]
        if len(set(metric_names)) != len(metric_names):
            problems.append("metric names must be unique")
        if not 3 <= len(self.metrics) <= 5 and self.metrics:
            problems.append(f"declare 3 to 5 production metrics, got {len(self.metrics)}")
        for slo in self.slos:
            if slo.metric not in metric_names:
                problems.append(
                    f"SLO {slo.name!r} watches unknown metric {slo.metric!r}; declared metrics: {metric_names}"
                )
        cadences = {m.name: m.cadence for m in self.metrics}
        for index, slo in enumerate(self.slos):
            unknown = sorted(set(slo.versions) - set(self.versions))
            if unknown:
                problems.append(
                    f"slos.{index}.versions names unknown version(s) {unknown}; {self.name}'s versions are "
                    f"{list(self.versions)}"
                )
            source = next((m.source for m in self.metrics if m.name == slo.metric), None)
            if slo.per_route and source is not None and not source.startswith("ops."):
                problems.append(
                    f"slos.{index}.per_route: only an ops.<metric> source has routes; {slo.metric!r} is {source!r}"
                )
            seasonal = None if slo.learned is None else slo.learned.seasonal
            if seasonal is not None and slo.metric in cadences:
                wanted, needs = {
                    "weekday": ("daily", "a weekday reference needs a daily metric"),
                    "hour": ("hourly", "an hour-of-day reference needs an hourly metric"),
                }[seasonal]
                if cadences[slo.metric] != wanted:
                    problems.append(f"slos.{index}.learned.seasonal: {needs}")
            problems += self._action_version_problems(f"slos.{index}.action", slo.action)
        slo_names = [s.name for s in self.slos]
        if len(set(slo_names)) != len(slo_names):
            problems.append("SLO names must be unique")
        unknown_overrides = sorted(set(self.contract.columns) - set(self.features.all + self.segments))
        if unknown_overrides:
            problems.append(f"contract.columns names {unknown_overrides}, which are not features or segments")
        learned = self.drift.learned
        if learned is not None and self.baseline.reference is not None:
            problems.append(
                "drift.learned: a reference dataset has no days to learn limits from; use a window baseline"
            )
        elif learned is not None and learned.periods > (days := (self.baseline.end - self.baseline.start).days + 1):
            problems.append(
                f"drift.learned.periods: {learned.periods} baseline days are needed, the baseline window has {days}"
            )
        if self.baseline.start < self.start_date:
            problems.append(f"baseline starts {self.baseline.start}, before the model's start_date {self.start_date}")
        if self.end_date is not None and self.baseline.end > self.end_date:
            problems.append(f"baseline ends {self.baseline.end}, after the model's end_date {self.end_date}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _action_version_problems(self, where: str, action: RunbookAction) -> list[str]:
        """Versions a rollback or dial names that the model does not have: the action would fail mid-incident."""
        known = f"{self.name}'s versions are {list(self.versions)}"
        target = action.params.get("to")
        if action.type == "rollback" and target is not None and target not in self.versions:
            return [f"{where}.params.to names unknown version {target!r}; {known}"]
        weights = action.params.get("weights")
        dialled = weights if action.type == "dial" and isinstance(weights, dict) else {}
        unknown = sorted(set(dialled) - set(self.versions))
        return [f"{where}.params.weights names unknown version(s) {unknown}; {known}"] if unknown else []

    @model_validator(mode="after")
    def _drift_columns_known(self) -> ModelSpec:
        watched = self.features.all + self.segments + DRIFT_OUTPUT_COLUMNS
        unknown = sorted(set(self.drift.columns) - set(watched))
        if unknown:
            raise ValueError(f"drift.columns names {unknown}, which are not features, segments, score or decision")
        return self

    def source_column(self, canonical: str) -> str:
        """The name the model's own log uses for one of closedloop's columns."""
        return self.columns.get(canonical, canonical)

    def threshold(self, version: str) -> float | None:
        spec = self.versions.get(version)
        return spec.threshold if spec else None

    @property
    def versions_by_release(self) -> list[str]:
        """Versions oldest first: by release date, unreleased ones last, ties in registry order."""
        order = list(self.versions)
        return sorted(order, key=lambda v: (self.versions[v].released or dt.date.max, order.index(v)))


DEFAULT_WEBHOOK_VARIABLE = "CLOSEDLOOP_WEBHOOK_URL"
DEFAULT_ROUTE = "default"
ENV_VARIABLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: object) -> dt.timedelta:
    """``30m``, ``4h``, ``1d`` (a whole number and s, m, h or d) as a time span of at least a minute."""
    if isinstance(value, dt.timedelta):
        span = value
    else:
        found = _DURATION.fullmatch(str(value)) if isinstance(value, str) else None
        if found is None:
            raise ValueError(f"{value!r} is not a duration: use a whole number and a unit, e.g. 30m, 4h or 1d")
        span = dt.timedelta(**{_DURATION_UNITS[found.group(2)]: int(found.group(1))})
    if span < dt.timedelta(minutes=1):
        raise ValueError(f"{value!r} is shorter than a minute; a reminder that often is noise")
    return span


class RouteMatch(_Strict):
    """Which incidents a route takes: both given keys must hold (the incident's owner is its SLO's owner,
    else its metric's); an empty match takes every incident."""

    owner: Owner | None = None
    severity: Severity | None = None

    def takes(self, owner: str | None, severity: str | None) -> bool:
        return (self.owner is None or self.owner == owner) and (self.severity is None or self.severity == severity)


class AlertRoute(_Strict):
    """Where one kind of incident message goes: the webhook URL in environment variable ``url_env``
    (a URL is a secret, so the registry names the variable, never the URL)."""

    name: Name
    url_env: Annotated[str, StringConstraints(pattern=ENV_VARIABLE_PATTERN)] = Field(
        description="The environment variable that holds the route's webhook URL, read when a message is sent."
    )
    match: RouteMatch = Field(default_factory=RouteMatch)


class AlertsSpec(_Strict):
    """How owners hear of incidents: routes tried in order (the first whose match takes the incident wins,
    then the default route, ``CLOSEDLOOP_WEBHOOK_URL``), and reminders for page incidents left alone."""

    routes: tuple[AlertRoute, ...] = ()
    renotify_after: dt.timedelta | None = Field(
        default=None,
        description="Tell the owner again when a page incident is still open, unacknowledged and unsilenced this "
        "long after its last message (e.g. 4h); unset, nobody is reminded.",
    )

    @field_validator("renotify_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> dt.timedelta | None:
        return None if value is None else parse_duration(value)

    @field_validator("routes")
    @classmethod
    def _reachable(cls, routes: tuple[AlertRoute, ...]) -> tuple[AlertRoute, ...]:
        names = [r.name for r in routes]
        if DEFAULT_ROUTE in names:
            raise ValueError(
                f"{DEFAULT_ROUTE!r} is closedloop's own last route ({DEFAULT_WEBHOOK_VARIABLE}); rename yours"
            )
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"route name(s) {repeated} are used more than once")
        catch_all = [r.name for r in routes[:-1] if r.match == RouteMatch()]
        if catch_all:
            raise ValueError(f"route {catch_all[0]!r} matches every incident, so the routes after it are never used")
        return routes

    @property
    def default_route(self) -> AlertRoute:
        """The last resort: the catch-all route when the registry ends with one, else ``CLOSEDLOOP_WEBHOOK_URL``."""
        if self.routes and self.routes[-1].match == RouteMatch():
            return self.routes[-1]
        return AlertRoute(name=DEFAULT_ROUTE, url_env=DEFAULT_WEBHOOK_VARIABLE)

    def route_for(self, owner: str | None, severity: str | None) -> AlertRoute:
        """The route an incident of ``owner`` and ``severity`` goes to: the first that takes it, else the default."""
        return next((r for r in self.routes if r.match.takes(owner, severity)), self.default_route)


class Registry(_Strict):
    """The whole registry: where data lands, where the lake is, and the models."""

    path: Path
    landing: Path
    lake: Path
    models: dict[str, ModelSpec]
    alerts: AlertsSpec = Field(default_factory=AlertsSpec)

    def model(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise RegistryError(f"{self.path}: no model named {name!r}; known models: {sorted(self.models)}") from None


class _RegistryFile(_Strict):
    landing: Path = Path("landing")
    lake: Path = Path("lake")
    alerts: AlertsSpec = Field(default_factory=AlertsSpec)
    models: dict[Name, dict] = Field(min_length=1)


_PATTERN_MEANINGS = {
    NAME_PATTERN: "not a valid name: use letters, digits and underscores, starting with a letter (at most 64)",
    OWNER_PATTERN: "not a valid owner: use an email address or team:<name>",
    ENV_VARIABLE_PATTERN: "not an environment variable name: use letters, digits and underscores, e.g. PAGER_URL",
    TAG_KEY_PATTERN: "not a valid tag key: letters, digits, '_', '-' and '.', at most 63 (optionally namespace/key)",
    TAG_VALUE_PATTERN: "not a valid tag value: letters, digits, '_', '-' and '.', at most 63",
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
            pattern = str(problem.get("ctx", {}).get("pattern"))
            message = f"{problem['input']!r} is " + _PATTERN_MEANINGS.get(pattern, message)
        elif problem["type"].startswith(("date_", "datetime_")):
            message = f"{problem['input']!r}: {message} (write a day that exists, YYYY-MM-DD)"
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


class DuplicateKeyError(yaml.YAMLError):
    """A mapping that gives one key twice; the message names the key and both lines."""


class _RegistryLoader(yaml.SafeLoader):
    """YAML as the schema wants it: a key given twice is an error, not last-wins (a second ``fraud:``
    would silently replace the first), and dates stay text, so that the schema parses them and a day
    that does not exist (``2026-13-01``) is reported with its key rather than as a YAML traceback."""

    yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, typing.Hashable) and key in seen:
                first = seen[key]
                raise DuplicateKeyError(f"line {line}: key {key!r} is given twice (first on line {first}); keep one")
            if isinstance(key, typing.Hashable):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_registry(path: str | os.PathLike, *, landing: str | None = None, lake: str | None = None) -> Registry:
    """Read a registry file and hold it to this schema; ``landing``/``lake`` override the file's roots.

    ``closedloop.registry.load_registry`` also holds it to the metrics closedloop computes.
    """
    path = Path(path).resolve()
    try:
        raw = yaml.load(path.read_text(), Loader=_RegistryLoader)  # noqa: S506 (a SafeLoader)
    except FileNotFoundError:
        raise RegistryError(f"{path}: registry file not found (set --config or CLOSEDLOOP_CONFIG)") from None
    except IsADirectoryError:
        raise RegistryError(
            f"{path}: is a folder; --config (or CLOSEDLOOP_CONFIG) names the registry file, e.g. {path / 'models.yaml'}"
        ) from None
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
    problems += _route_owner_problems(top.alerts, models)
    if problems:
        raise RegistryError(f"{path}: invalid registry\n" + "\n".join(problems))

    base = path.parent
    return Registry(
        path=path,
        landing=(base / (landing or top.landing)).resolve(),
        lake=(base / (lake or top.lake)).resolve(),
        models=models,
        alerts=top.alerts,
    )


def registry_owners(models: dict[str, ModelSpec]) -> list[str]:
    """Every owner the registry names: of a model, a metric or an SLO."""
    owners = {m.owner for m in models.values()}
    owners |= {metric.owner for m in models.values() for metric in m.metrics}
    owners |= {slo.owner for m in models.values() for slo in m.slos if slo.owner is not None}
    return sorted(owners)


def _route_owner_problems(alerts: AlertsSpec, models: dict[str, ModelSpec]) -> list[str]:
    """Routes that match an owner nobody in the registry is: a misspelt team would never be paged."""
    owners = registry_owners(models)
    return [
        f"  alerts.routes.{i}.match.owner: {route.match.owner!r} owns no model, metric or SLO here; owners: {owners}"
        for i, route in enumerate(alerts.routes)
        if route.match.owner is not None and route.match.owner not in owners
    ]
