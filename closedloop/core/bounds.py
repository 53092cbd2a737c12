"""Bounds: the one shape of a threshold, for drift limits, SLOs and operational guards alike.

A bound says which values are acceptable: at most a limit (``upper``), at least one (``lower``),
inside an interval (``band``), within a limit either way of zero (``absolute``, for signed
changes) or within a factor either way of one (``ratio``). It has up to two levels, ``warn`` and
``error``; a bound with neither judges nothing (the figure is only reported). ``strict`` makes
the limit itself unacceptable (an SLO's ``<`` rather than ``<=``).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

BoundType = Literal["upper", "lower", "band", "absolute", "ratio"]
Level = Literal["ok", "warn", "error"]
Limit = float | tuple[float, float]


class Bound(BaseModel):
    """Acceptable values of one figure, at a warn and an error level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: BoundType
    warn: Limit | None = None
    error: Limit | None = None
    strict: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Bound:
        for limit in (self.warn, self.error):
            if limit is None:
                continue
            if (self.type == "band") != isinstance(limit, tuple):
                raise ValueError("a band's limits are [low, high] pairs; every other bound's limits are numbers")
            if isinstance(limit, tuple) and limit[0] > limit[1]:
                raise ValueError(f"band low {limit[0]} is above high {limit[1]}")
            floor = {"absolute": 0.0, "ratio": 1.0}.get(self.type)
            if floor is not None and isinstance(limit, float | int) and limit < floor:
                raise ValueError(f"an {self.type} limit must be at least {floor}, got {limit}")
        warn, error = self.warn, self.error
        if isinstance(warn, float | int) and isinstance(error, float | int):
            if self.type == "lower" and warn < error:
                raise ValueError(f"warn {warn} is below error {error}: a lower bound warns first")
            if self.type != "lower" and warn > error:
                raise ValueError(f"warn {warn} is above error {error}")
        return self

    def limit(self, level: str) -> Limit | None:
        """The limit a value at ``level`` is judged against: the error limit once it errs, else the warn limit."""
        if level == "error" or self.warn is None:
            return self.error
        return self.warn

    def breaks(self, value: float, level: Literal["warn", "error"] = "error") -> bool:
        """True when ``value`` is beyond the limit of ``level`` (the other level's if that one is unset)."""
        limit = self.limit(level)
        if limit is None:
            return False
        if isinstance(limit, tuple):
            low, high = limit
            return value <= low or value >= high if self.strict else not low <= value <= high
        if self.type == "lower":
            return value <= limit if self.strict else value < limit
        magnitude = self._magnitude(value)
        return magnitude >= limit if self.strict else magnitude > limit

    def level(self, value: float) -> Level:
        """``error`` or ``warn`` once the value is beyond that limit, else ``ok``."""
        if self.error is not None and self.breaks(value, "error"):
            return "error"
        if self.warn is not None and self.breaks(value, "warn"):
            return "warn"
        return "ok"

    def severity(self, value: float) -> float | None:
        """How far the value has gone toward the error limit (1.0 = at it), to rank figures by."""
        limit = self.error if self.error is not None else self.warn
        if limit is None or isinstance(limit, tuple):
            return None
        if self.type == "lower":
            return limit / value if value > 0 else float("inf")
        magnitude = self._magnitude(value)
        if self.type == "ratio":
            # Factors compare on a log scale: 2x up and 2x down are equally far.
            return float("inf") if limit == 1.0 else math.log(magnitude) / math.log(limit)
        return magnitude / limit if limit > 0 else float("inf")

    def shortfall(self, value: float) -> float:
        """How far ``value`` lies on the bad side of the error limit (negative: the margin left), to rank by."""
        limit = self.limit("error")
        if limit is None:
            return -math.inf
        if isinstance(limit, tuple):
            return max(limit[0] - value, value - limit[1])
        if self.type == "lower":
            return limit - value
        return self._magnitude(value) - limit

    def describe(self, level: Literal["warn", "error"] = "error") -> str:
        """The acceptable values in a few characters: ``<= 0.1``, ``>= 0.8``, ``within [0.05, 0.2]``."""
        limit = self.limit(level)
        if isinstance(limit, tuple):
            return f"within [{limit[0]}, {limit[1]}]"
        if self.type == "lower":
            return f"{'>' if self.strict else '>='} {limit}"
        if self.type == "upper":
            return f"{'<' if self.strict else '<='} {limit}"
        if self.type == "absolute":
            return f"within ±{limit}"
        return f"within a factor of {limit}"

    def _magnitude(self, value: float) -> float:
        if self.type == "absolute":
            return abs(value)
        if self.type == "ratio":
            return float("inf") if value <= 0 else max(value, 1.0 / value)
        return value


class LearnedLimits(BaseModel):
    """Limits learned from the figure's own reference values instead of written down, like NannyML's
    standard-deviation thresholds: mean ± ``k`` standard deviations, within a ``share`` of the mean,
    or between two ``quantiles``.

    The reference is the subject's ``first`` ``periods`` periods with data (a version's shadow days,
    else its first days in production; it is *learning* until then), or the ``trailing`` ``periods``
    periods before the one judged that did not break the limits. ``seasonal: weekday`` centres the
    limits on the reference days of the judged day's weekday, their width taken from all of them;
    ``seasonal: hour`` does the same with the hour of the day, for hourly figures (latency by day and
    by night).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    reference: Literal["first", "trailing"] = "first"
    periods: int = Field(default=14, ge=3, le=366)
    method: Literal["sd", "share", "quantile"] = "sd"
    k: float | None = Field(default=None, gt=0)
    share: float | None = Field(default=None, gt=0)
    quantiles: tuple[float, float] | None = None
    side: Literal["both", "upper", "lower"] = "both"
    seasonal: Literal["weekday", "hour"] | None = None

    @model_validator(mode="after")
    def _one_width(self) -> LearnedLimits:
        widths = {"sd": "k", "share": "share", "quantile": "quantiles"}
        for method, field in widths.items():
            given = getattr(self, field) is not None
            if method != self.method and given:
                raise ValueError(f"{field} is the width of method {method!r}, not of {self.method!r}")
        if self.method == "share" and self.share is None:
            raise ValueError("method 'share' needs share (e.g. 0.2: within 20% of the reference mean)")
        if self.method == "quantile":
            if self.quantiles is None:
                raise ValueError("method 'quantile' needs quantiles (e.g. [0.01, 0.99])")
            low, high = self.quantiles
            if not 0 <= low < high <= 1:
                raise ValueError(f"quantiles must be two shares 0 <= low < high <= 1, got [{low}, {high}]")
        if self.seasonal == "weekday" and self.periods < 14:
            raise ValueError(f"a weekday reference needs at least 14 periods (two of each weekday), got {self.periods}")
        if self.seasonal == "hour" and self.periods < 48:
            raise ValueError(
                f"an hour-of-day reference needs at least 48 periods (two of each hour), got {self.periods}"
            )
        return self

    def season(self, moment: dt.datetime) -> int:
        """The season ``moment`` belongs to: its weekday, or its hour of the day (0 when not seasonal)."""
        if self.seasonal == "weekday":
            return moment.weekday()
        return moment.hour if self.seasonal == "hour" else 0

    @property
    def width(self) -> float:
        """How many standard deviations the ``sd`` method allows (3 unless ``k`` says otherwise)."""
        return 3.0 if self.k is None else self.k

    def bound(self, values: list[float], seasons: list[int] | None = None, season: int | None = None) -> Bound | None:
        """The bound these reference values teach: an error-level band, or one side of it.

        With ``seasons`` (each value's weekday, say) the limits sit around the mean of the values of
        ``season`` and take their spread from every value's distance to its own season's mean, so
        two Mondays set the level and all fourteen days the width. None when the values cannot
        tell a spread (no value of ``season``, or every season seen once).
        """
        data = np.asarray(values, dtype=float)
        labels = np.zeros(len(data), dtype=int) if seasons is None else np.asarray(seasons)
        season = 0 if seasons is None else season
        means = {label: float(data[labels == label].mean()) for label in set(labels.tolist())}
        if season not in means or len(data) <= len(means):
            return None
        centre = means[season]
        residuals = data - np.array([means[label] for label in labels.tolist()])
        if self.method == "quantile":
            assert self.quantiles is not None  # the validator requires them
            low, high = (centre + float(q) for q in np.quantile(residuals, self.quantiles))
        elif self.method == "share":
            assert self.share is not None  # the validator requires it
            low, high = sorted((centre * (1 - self.share), centre * (1 + self.share)))
        else:
            sd = float(np.sqrt(np.sum(residuals**2) / (len(data) - len(means))))
            low, high = centre - self.width * sd, centre + self.width * sd
        if self.side == "upper":
            return Bound(type="upper", error=high)
        if self.side == "lower":
            return Bound(type="lower", error=low)
        return Bound(type="band", error=(low, high))

    def describe(self) -> str:
        """The learned limits in words: ``within 3 sd of the mean of the first 14 periods (same weekday)``."""
        reference = f"the {self.reference if self.reference == 'first' else 'last'} {self.periods} periods"
        reference += {"weekday": " (same weekday)", "hour": " (same hour of the day)", None: ""}[self.seasonal]
        if self.method == "quantile":
            assert self.quantiles is not None  # the validator requires them
            low, high = self.quantiles
            side = {"both": f"between the {low:g} and {high:g} quantiles", "upper": f"at most the {high:g} quantile"}
            return f"{side.get(self.side, f'at least the {low:g} quantile')} of {reference}"
        width = f"{self.width:g} sd" if self.method == "sd" else f"{self.share:.0%}"
        side = {"both": f"within {width} of", "upper": f"at most {width} above", "lower": f"at most {width} below"}
        return f"{side[self.side]} the mean of {reference}"
