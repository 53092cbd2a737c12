"""Bounds: the one shape of a threshold, for drift limits, SLOs and operational guards alike.

A bound says which values are acceptable: at most a limit (``upper``), at least one (``lower``),
inside an interval (``band``), within a limit either way of zero (``absolute``, for signed
changes) or within a factor either way of one (``ratio``). It has up to two levels, ``warn`` and
``error``; a bound with neither judges nothing (the figure is only reported). ``strict`` makes
the limit itself unacceptable (an SLO's ``<`` rather than ``<=``).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

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
