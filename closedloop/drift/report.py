"""The drift report: every drift measure of a day and its window, per version, judged against the registry's limits.

Rows of the report (``REPORT_SCHEMA``) are what the ``drift`` asset writes, the drift checks
judge and the ``drift.*`` SLO sources read; ``closedloop.drift.measures`` computes each figure.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from closedloop.core.bounds import Bound
from closedloop.core.names import ALL
from closedloop.core.specs import DRIFT_OUTPUT_COLUMNS, ModelSpec
from closedloop.drift.baseline import Baseline
from closedloop.drift.evidence import EVIDENCE, q_values
from closedloop.drift.measures import MOMENT_MEASURES, ROLE_METRICS, ColumnProfile, Comparison
from closedloop.drift.profiles import merge_profiles

DAY_WINDOW = "day"
ALL_INPUTS = "(inputs)"  # the column of multivariate rows; never a valid column name

REPORT_SCHEMA = pa.schema(
    [
        ("day", pa.date32()),
        ("column", pa.string()),
        ("version", pa.string()),
        ("window", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("threshold", pa.float64()),  # the limit the status was judged against
        ("severity", pa.float64()),  # how far toward the error limit (1.0 = at it); ranks columns
        ("status", pa.string()),  # ok, warn, error, or one of UNJUDGED
        ("rows", pa.int64()),  # rows of the version in the window
        ("p_value", pa.float64()),  # the test behind the figure (``drift.evidence``); null without one
        ("q_value", pa.float64()),  # the p-value adjusted across the day's tests of the version and window
    ]
)
NOT_SIGNIFICANT = "not_significant"
# A version's outputs while its own reference is not complete (``drift.version_reference``), and the
# versions' outputs pooled while one of them has its own: reported against the baseline, never judged.
LEARNING = "learning"
MIXED_VERSIONS = "mixed_versions"
# A mean or standard deviation whose window sums left float64 (a value near 1e308 among amounts): it is
# unknown, not small or large, and the contract's range check is what names such values.
MOMENTS_OVERFLOW = "moments_overflow"
UNJUDGED = ("not_enough_data", NOT_SIGNIFICANT, LEARNING, MIXED_VERSIONS, MOMENTS_OVERFLOW)


def drift_report(
    model: ModelSpec,
    baseline: Baseline,
    profiles_for_day: pa.Table,
    profiles_for_window: pa.Table,
    *,
    window: str = "7d",
    day: dt.date | None = None,
    domain_auc: Mapping[str, float] | None = None,
    reference_profile: pa.Table | None = None,
    version_references: Mapping[str, pa.Table | None] | None = None,
    learned_limits: Mapping[tuple[str, str], Bound] | None = None,
) -> pa.Table:
    """Every drift metric of the day and of the window, per version and for all versions together.

    ``profiles_for_day`` holds the day's profile rows, ``profiles_for_window`` the daily rows of
    the window ending that day (``window`` labels it). ``day`` defaults to the day of the rows.
    ``domain_auc`` maps a window label to the domain classifier's ROC AUC for it. A version or
    window with fewer than ``drift.min_rows`` rows, or a metric the data leaves undefined, is
    ``not_enough_data`` and never alerts. ``reference_profile`` (rows merged across versions)
    replaces the baseline's own profile as the reference, for a trailing-window baseline; the
    bins and values stay the baseline's, so every day is still measured the same way.
    ``version_references`` maps a version released after the baseline to its own reference profile
    (None while it is learning): its score and decision are judged against it, and the versions'
    pooled score and decision are only reported while that version has rows. ``learned_limits``
    ((column, metric) -> limit, ``drift.learned_limits``) replace the written ones they cover.
    """
    baseline.require_model(model)
    days = profiles_for_day.column("day").to_pylist() + profiles_for_window.column("day").to_pylist()
    day = day or max(days, default=None)
    if day is None:
        raise ValueError("no profile rows to take the day from; pass day=")
    reference_rows = (baseline.profile if reference_profile is None else reference_profile).to_pylist()
    reference = {row["column"]: ColumnProfile.from_row(row) for row in reference_rows}
    kinds = {row["column"]: row["kind"] for row in baseline.profile.to_pylist()}
    own = {
        version: None if profile is None else {r["column"]: ColumnProfile.from_row(r) for r in profile.to_pylist()}
        for version, profile in (version_references or {}).items()
    }
    rows = []
    for label, profiles in ((DAY_WINDOW, profiles_for_day), (window, profiles_for_window)):
        if set(profiles.column("baseline_hash").to_pylist()) - {baseline.hash}:
            raise ValueError(
                f"profiles of the {label} window were not made on baseline {baseline.name!r} ({baseline.hash})"
            )
        merged = merge_profiles([profiles]).to_pylist()
        everything = {row["column"]: row for row in merge_profiles([profiles], across_versions=True).to_pylist()}
        mixed = any(row["model_version"] in own and row["rows"] for row in merged)
        for column, ref in reference.items():
            current = ColumnProfile.from_row(everything[column]) if column in everything else ColumnProfile.empty(ref)
            unjudged = MIXED_VERSIONS if mixed and column in DRIFT_OUTPUT_COLUMNS else None
            rows += _column_rows(
                model, baseline, column, kinds[column], ALL, label, current, ref, unjudged, learned_limits
            )
        for row in merged:
            column, version = row["column"], row["model_version"]
            if column not in reference:
                continue
            ref, unjudged = reference[column], None
            if version in own and column in DRIFT_OUTPUT_COLUMNS:
                versions_own = own[version]
                if versions_own is None or column not in versions_own:
                    unjudged = LEARNING
                else:
                    ref = versions_own[column]
            current = ColumnProfile.from_row(row)
            rows += _column_rows(
                model, baseline, column, row["kind"], version, label, current, ref, unjudged, learned_limits
            )
        if domain_auc and label in domain_auc:
            window_rows = max((r["rows"] for r in everything.values()), default=0)
            enough = window_rows >= model.drift.min_rows
            rows.append(
                _judged(
                    ALL_INPUTS,
                    ALL,
                    label,
                    "domain_classifier_auc",
                    domain_auc[label],
                    window_rows,
                    enough,
                    model.drift.limit("domain_classifier_auc", ALL_INPUTS),
                )
            )
    table = pa.Table.from_pylist(_controlled(rows, model.drift.false_alert_rate), schema=REPORT_SCHEMA.remove(0))
    return table.add_column(0, "day", pa.array([day] * table.num_rows, pa.date32()))


def _column_rows(
    model: ModelSpec,
    baseline: Baseline,
    column: str,
    kind: str,
    version: str,
    window: str,
    current: ColumnProfile,
    reference: ColumnProfile,
    unjudged: str | None = None,
    learned_limits: Mapping[tuple[str, str], Bound] | None = None,
) -> list[dict]:
    """The column's figures; with ``unjudged`` (a status) they are reported under it, never judged."""
    role = column if column in DRIFT_OUTPUT_COLUMNS else kind
    spec = baseline.numeric.get(column) or baseline.categorical.get(column)
    if spec is None:
        raise ValueError(f"{column} has no baseline {baseline.name!r}; profile it on that baseline first")
    threshold = model.threshold(version) if version != ALL else None
    comparison = Comparison(column, current, reference, spec, threshold)
    enough = min(current.rows, reference.rows) >= model.drift.min_rows
    rows, tests = [], {}
    overflow = not (current.moments_finite and reference.moments_finite)
    for metric in ROLE_METRICS[role]:
        value = metric(comparison)
        if value is None:
            continue
        limit = (learned_limits or {}).get((column, metric.__name__)) or model.drift.limit(metric.__name__, column)
        row = _judged(column, version, window, metric.__name__, value, current.rows, enough, limit)
        if overflow and metric in MOMENT_MEASURES:
            rows.append({**row, "value": None, "threshold": None, "severity": None, "status": MOMENTS_OVERFLOW})
            continue
        if unjudged is not None and row["status"] != "not_enough_data":
            rows.append({**row, "threshold": None, "severity": None, "status": unjudged})
            continue
        test = EVIDENCE.get(metric.__name__)
        if test is not None and row["status"] != "not_enough_data":
            if test not in tests:
                tests[test] = test(comparison)
            row["p_value"] = tests[test]
        rows.append(row)
    return rows


def _controlled(rows: list[dict], false_alert_rate: float) -> list[dict]:
    """The rows with their q-values: Benjamini-Hochberg across each version and window's tests, and a
    figure past its limit whose change is within the noise is ``not_significant`` instead."""
    families: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if row.get("p_value") is not None:
            families.setdefault((row["version"], row["window"]), []).append(row)
    for family in families.values():
        for row, q in zip(family, q_values([r["p_value"] for r in family]), strict=True):
            row["q_value"] = q
            if row["status"] in ("warn", "error") and q > false_alert_rate:
                row["status"] = NOT_SIGNIFICANT
    return rows


def _judged(
    column: str, version: str, window: str, metric: str, value: float, rows: int, enough: bool, limit: Bound | None
) -> dict:
    row = {"column": column, "version": version, "window": window, "metric": metric, "rows": rows}
    if not enough or math.isnan(value):
        return {
            **row,
            "value": None if math.isnan(value) else value,
            "threshold": limit.limit("ok") if limit else None,
            "severity": None,
            "status": "not_enough_data",
        }
    if limit is None:
        return {**row, "value": value, "threshold": None, "severity": None, "status": "ok"}
    level = limit.level(value)
    return {**row, "value": value, "threshold": limit.limit(level), "severity": limit.severity(value), "status": level}


def unjudged_counts(report: pa.Table) -> dict[str, int]:
    """How many figures were not judged, by why: too few rows, within the noise (past a limit, but not
    significant across the day's tests), a version still learning its own reference, versions pooled."""
    status = report.column("status")
    return {reason: pc.sum(pc.equal(status, reason)).as_py() or 0 for reason in UNJUDGED}


def judged_rows(report: pa.Table) -> pa.Table:
    """The day's figures, and the trailing week's where the day alone had too few rows (a small canary).

    A trailing window keeps an incident in view for a week after it ended; judging it every day
    would alert on clean days, so it stands in only where the day cannot speak for itself.
    """
    frame = report.to_pandas()
    day = frame[frame["window"] == "day"]
    thin = day[day["status"] == "not_enough_data"][["day", "column", "version", "metric"]]
    week = frame[frame["window"] != "day"].merge(thin, on=["day", "column", "version", "metric"])
    judged = day[day["status"] != "not_enough_data"]
    return pa.Table.from_pandas(
        pd.concat([judged, week], ignore_index=True), schema=report.schema, preserve_index=False
    )


FIGURE_GROUPS = ("features", "score", "decision", "inputs_together")


def figures_of(report: pa.Table, group: str) -> pa.Table:
    """The rows of one group of figures: the features and segments, the score, the decision, or
    the inputs taken together (the domain classifier)."""
    column = report.column("column")
    if group == "score":
        return report.filter(pc.equal(column, "score"))
    if group == "decision":
        return report.filter(pc.equal(column, "decision"))
    if group == "inputs_together":
        return report.filter(pc.equal(column, ALL_INPUTS))
    if group != "features":
        raise ValueError(f"unknown group of drift figures {group!r}; groups are {list(FIGURE_GROUPS)}")
    return report.filter(pc.invert(pc.is_in(column, pa.array([*DRIFT_OUTPUT_COLUMNS, ALL_INPUTS]))))


@dataclass(frozen=True)
class InputDrift:
    """For one version (or ALL) and one feature or segment column: whether a figure is past its error limit."""

    version: str
    column: str
    drifting: bool
    rows: int
    detail: str | None = None  # the worst figure past its limit, in words


def figure_in_words(row: dict) -> str:
    """A drift figure and its limit as a person reads it: ``income: missing_rate_delta +0.2, limit 0.05``."""
    signed = "+.3g" if row["metric"].endswith(("_delta", "_shift")) else ".3g"
    return f"{row['column']}: {row['metric']} {row['value']:{signed}}, limit {row['threshold']:.3g}"


def input_drift(report: pa.Table) -> list[InputDrift]:
    """Per version and input column of one window's drift report, the columns with a judged figure."""
    judged: dict[tuple[str, str], list[dict]] = {}
    for row in figures_of(report, "features").to_pylist():
        if row["status"] != "not_enough_data":
            judged.setdefault((row["version"], row["column"]), []).append(row)
    found = []
    for (version, column), rows in sorted(judged.items()):
        errors = sorted((r for r in rows if r["status"] == "error"), key=lambda r: -(r["severity"] or 0))
        detail = figure_in_words(errors[0]) if errors else None
        found.append(InputDrift(version, column, bool(errors), max(r["rows"] for r in rows), detail))
    return found


@dataclass(frozen=True)
class DriftingInputs:
    """For one version (or ALL): the feature and segment columns with a figure past its error limit."""

    version: str
    count: int | None  # None: no input figure could be judged (not enough data)
    rows: int | None = None
    detail: str | None = None  # each drifting column with its worst figure and limit


def drifting_inputs(report: pa.Table) -> list[DriftingInputs]:
    """Per version of one window's drift report: how many input columns drift past an error limit, and which."""
    versions = sorted(set(figures_of(report, "features")["version"].to_pylist()))
    columns = input_drift(report)
    found = []
    for version in versions:
        mine = [c for c in columns if c.version == version]
        if not mine:
            found.append(DriftingInputs(version, None))
            continue
        drifting = [c for c in mine if c.drifting]
        detail = "; ".join(c.detail for c in drifting if c.detail)
        found.append(DriftingInputs(version, len(drifting), max(c.rows for c in mine), detail or None))
    return found
