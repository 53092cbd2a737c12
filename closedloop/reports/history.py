"""The days before a report's day, as the figures draw them: SLO values, quality by window, labels.

Each reader takes the report's day and how many days back to look, and reads only what was
known by the end of that day, so the report of 2026-10-06 rebuilt in December still shows
the labels it rested on then.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from closedloop.control.slo import read_evaluations
from closedloop.core.lake import Lake
from closedloop.core.names import ALL
from closedloop.core.periods import period_start
from closedloop.core.specs import ModelSpec
from closedloop.core.sql import connect, query


def first_day(day: dt.date, days: int) -> dt.date:
    return day - dt.timedelta(days=days - 1)


def slo_history(lake: Lake, model: ModelSpec, day: dt.date, days: int) -> pd.DataFrame:
    """Every SLO evaluation of the ``days`` days to ``day``, with the period's start as ``time``."""
    frame = read_evaluations(lake, model.name, first_day(day, days), day).to_pandas()
    frame["time"] = [period_start(p) for p in frame["period"]]
    return frame.sort_values("time")


def quality_history(lake: Lake, model: ModelSpec, day: dt.date, days: int, metric: str, window_days: int):
    """``metric`` of every version (and all versions) over the ``window_days`` window ending on each day,
    per label set (matured, immature, estimated), as the day's rolling evaluation recorded it."""
    columns = ["window_days", "window_end", "model_version", "segment", "labels", "metric", "value", "lower", "upper"]
    table = lake.read_range(model.name, "rolling_eval", first_day(day, days), day, columns=columns)
    if table is None:
        return pd.DataFrame(columns=columns)
    frame = table.to_pandas()
    chosen = (frame["metric"] == metric) & (frame["window_days"] == window_days) & (frame["segment"] == ALL)
    return frame[chosen].dropna(subset=["value"])


def label_coverage(lake: Lake, model: ModelSpec, day: dt.date, days: int) -> pd.DataFrame:
    """Per prediction day of the window: predictions, those labeled by the end of ``day``, label delays."""
    files = [str(p) for p in lake.partition_files(model.name, "outcomes", first_day(day, days), day)]
    if not files:
        return pd.DataFrame(columns=["prediction_date", "n", "labeled", "delay_p50_hours", "delay_p90_hours"])
    known_before = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    with connect() as con:
        frame = con.sql(
            query(__package__, "label_coverage"), params={"files": files, "known_before": known_before}
        ).df()
    frame["coverage"] = frame["labeled"] / frame["n"]
    return frame
