"""What a comparison compares: two versions of one model, their periods, and which population that makes.

People ask "what changed when we shipped v12?" without dates. The defaults answer what they
mean: the days both versions served traffic (the canary); without a canary, the days the
candidate scored in shadow; without either, the candidate's life so far against the baseline's
last 30 days before the candidate's release. Which population the periods make decides which
tests are valid, so it is settled here, once, and said in the report's first line:

- **paired**: both versions scored the same requests (shadow traffic, joined on the registry's
  ``pairing_key``), so per-request differences are compared;
- **same days**: each request was scored by one version on the same days (a canary split);
- **across periods**: the versions ran on different days, so the traffic itself may have changed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from closedloop.core.lake import Lake
from closedloop.core.names import ALL
from closedloop.core.specs import ModelSpec, Registry
from closedloop.core.sql import connect, query

PAIRED = "paired"
SAME_DAYS = "same days"
ACROSS_PERIODS = "across periods"
BASELINE_DAYS_BEFORE_RELEASE = 30


class CompareError(ValueError):
    """A comparison that cannot be made as asked; the message says what to change."""


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def __str__(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start} to {self.end}"


@dataclass(frozen=True)
class ComparisonRequest:
    model: str
    baseline: str
    candidate: str
    baseline_period: Period
    candidate_period: Period
    population: str
    segments: tuple[str, ...]
    pairing_key: str | None = None
    left_out: Period | None = None  # the candidate's shadow days, left out of an unpaired view

    @property
    def comparison_id(self) -> str:
        """The comparison's folder name: the versions and the days, e.g. ``v11_vs_v12_20261006_20261011``."""

        def days(period: Period) -> str:
            return f"{period.start:%Y%m%d}_{period.end:%Y%m%d}"

        periods = days(self.baseline_period)
        if self.candidate_period != self.baseline_period:
            periods += f"_{days(self.candidate_period)}"
        segment = f"_by_{self.segments[0]}" if len(self.segments) == 1 else ""
        return f"{self.baseline}_vs_{self.candidate}_{periods}{segment}"

    def describe(self) -> str:
        """The report's first line: which comparison this is, on which population."""
        what = f"{self.model}: {self.candidate} against {self.baseline}"
        if self.population == PAIRED:
            same = "both versions scored the same requests"
            return f"{what}, paired on {self.pairing_key}: {same} ({self.baseline_period})"
        if self.population == SAME_DAYS:
            split = "each request was scored by one version"
            return f"{what}, unpaired on the same days: {split} ({self.baseline_period})"
        return (
            f"{what}, unpaired across periods: {self.baseline} on {self.baseline_period}, {self.candidate} on "
            f"{self.candidate_period}; the traffic may differ, see the input drift beside each difference"
        )

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "baseline": {"version": self.baseline, "start": str(self.baseline_period.start),
                         "end": str(self.baseline_period.end)},
            "candidate": {"version": self.candidate, "start": str(self.candidate_period.start),
                          "end": str(self.candidate_period.end)},
            "population": self.population,
            "pairing_key": self.pairing_key if self.population == PAIRED else None,
            "segments": list(self.segments),
            "shadow_days_left_out": None if self.left_out is None else str(self.left_out),
        }  # fmt: skip


def served_days(lake: Lake, model: str) -> dict[str, list[dt.date]]:
    """The days each version served requests, from the daily evaluation statistics."""
    return _days_per_version(lake, model, "eval_stats", "served_days", {"all": ALL})


def shadow_days(lake: Lake, model: str) -> dict[str, list[dt.date]]:
    """The days each version scored requests in shadow (its decisions not applied)."""
    return _days_per_version(lake, model, "shadow", "shadow_days", {})


def _days_per_version(lake: Lake, model: str, table: str, sql: str, params: dict) -> dict[str, list[dt.date]]:
    files = lake.partition_files(model, table)
    if not files:
        return {}
    with connect() as con:
        con.register("source", con.read_parquet([str(f) for f in files]))
        rows = con.execute(query(__package__, sql), params).fetchall()
    days: dict[str, list[dt.date]] = {}
    for version, day in rows:
        days.setdefault(version, []).append(day)
    return days


def _span(days: list[dt.date]) -> str:
    return f"{days[0]} to {days[-1]}" if days else "no days"


def _period(start: dt.date | None, end: dt.date | None, what: str) -> Period | None:
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise CompareError(f"give both --{what}start and --{what}end, or neither")
    if end < start:
        raise CompareError(f"--{what}end {end} is before --{what}start {start}")
    return Period(start, end)


def _inside(days: list[dt.date], period: Period) -> list[dt.date]:
    return [d for d in days if period.start <= d <= period.end]


def plan_comparison(
    lake: Lake,
    registry: Registry,
    model_name: str,
    baseline: str,
    candidate: str,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    baseline_start: dt.date | None = None,
    baseline_end: dt.date | None = None,
    candidate_start: dt.date | None = None,
    candidate_end: dt.date | None = None,
    segment: str | None = None,
) -> ComparisonRequest:
    """The comparison asked for, with its defaults filled in; a :class:`CompareError` for a request it cannot answer."""
    if model_name not in registry.models:
        raise CompareError(f"unknown model {model_name!r}; the registry has {', '.join(sorted(registry.models))}")
    model = registry.model(model_name)
    for version in (baseline, candidate):
        if version not in model.versions:
            raise CompareError(
                f"model {model_name} has no version {version!r}; its versions are {', '.join(model.versions)}"
            )
    if baseline == candidate:
        raise CompareError(f"--baseline and --candidate are both {baseline}; name two different versions")
    if segment is not None and segment not in model.segments:
        known = ", ".join(model.segments) or "none"
        raise CompareError(f"model {model_name} has no segment {segment!r}; its segments are {known}")
    segments = (segment,) if segment else model.segments

    served = served_days(lake, model_name)
    shadow = shadow_days(lake, model_name) if model.pairing_key else {}
    both_periods = _period(start, end, "")
    baseline_period = _period(baseline_start, baseline_end, "baseline-") or both_periods
    candidate_period = _period(candidate_start, candidate_end, "candidate-") or both_periods
    if baseline_period is None and candidate_period is None:
        baseline_period, candidate_period = _default_periods(model, baseline, candidate, served, shadow)
    elif baseline_period is None or candidate_period is None:
        raise CompareError("give the other version's period too (--baseline-start/--baseline-end or --start/--end)")
    assert baseline_period is not None and candidate_period is not None

    candidate_shadow = _inside(shadow.get(candidate, []), candidate_period)
    candidate_served = _inside(served.get(candidate, []), candidate_period)
    baseline_served = _inside(served.get(baseline, []), baseline_period)
    if not baseline_served:
        raise CompareError(
            f"{baseline} served no requests from {baseline_period}; it has rows on {_span(served.get(baseline, []))}"
        )
    if not candidate_served and not candidate_shadow:
        raise CompareError(
            f"{candidate} scored no requests from {candidate_period}; it served on "
            f"{_span(served.get(candidate, []))} and scored in shadow on {_span(shadow.get(candidate, []))}"
        )
    left_out = None
    if baseline_period != candidate_period:
        population = ACROSS_PERIODS
    elif candidate_shadow and not candidate_served:
        population = PAIRED
    else:
        population = SAME_DAYS
        every_shadow_day = shadow.get(candidate, [])
        if every_shadow_day:  # the candidate's shadow days are compared apart, paired
            left_out = Period(every_shadow_day[0], every_shadow_day[-1])
    return ComparisonRequest(
        model=model_name,
        baseline=baseline,
        candidate=candidate,
        baseline_period=baseline_period,
        candidate_period=candidate_period,
        population=population,
        segments=tuple(segments),
        pairing_key=model.pairing_key,
        left_out=left_out,
    )


def _default_periods(
    model: ModelSpec,
    baseline: str,
    candidate: str,
    served: dict[str, list[dt.date]],
    shadow: dict[str, list[dt.date]],
) -> tuple[Period, Period]:
    """The canary, else the shadow week, else the candidate's life against the baseline's last 30 days before it."""
    baseline_days = set(served.get(baseline, []))
    canary = sorted(baseline_days & set(served.get(candidate, [])))
    if canary:
        return Period(canary[0], canary[-1]), Period(canary[0], canary[-1])
    paired = sorted(baseline_days & set(shadow.get(candidate, [])))
    if paired:
        return Period(paired[0], paired[-1]), Period(paired[0], paired[-1])
    candidate_days = served.get(candidate, [])
    if not candidate_days:
        raise CompareError(f"{candidate} of {model.name} has served no requests yet; nothing to compare")
    released = model.versions[candidate].released or candidate_days[0]
    before = [d for d in sorted(baseline_days) if d < released][-BASELINE_DAYS_BEFORE_RELEASE:]
    if not before:
        raise CompareError(
            f"{baseline} of {model.name} served no requests before {candidate}'s release on {released}; "
            "give the periods (--baseline-start/--baseline-end and --candidate-start/--candidate-end)"
        )
    return Period(before[0], before[-1]), Period(candidate_days[0], candidate_days[-1])
