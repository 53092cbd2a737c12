"""Simulated traffic of the ``wide`` model: 50 features and 3 segments, to measure false alerts.

A day judges dozens of columns x drift figures, so some cross their limits by chance; this model
measures how often that becomes an incident on clean days (``python -m bench.false_alerts``).
40 numeric features of several shapes (some with a natural missing rate), 10 categorical ones,
segments ``region``, ``channel`` and ``tier``. The week has a rhythm, as on the other models'
clean days: weekends bring fewer requests, more of them on the app and from the basic tier,
whose scores run higher, so the weekend's decision rate differs from the week's.

Ground truth is a logistic function of a few features and the segments; the score is its
calibrated estimate with a little model noise. Labels arrive 1-3 days later. The one injected
incident, ``wide_feature_nulls``, makes a numeric feature arrive partly null for a few days.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pyarrow as pa

from closedloop.simulator import sampling as s
from closedloop.simulator.landing import ModelGenerator

MODEL = "wide"
MODEL_INDEX = 2
VERSION = "v1"
THRESHOLD = 0.5

NUMERIC_FEATURES = tuple(f"x{i:02d}" for i in range(1, 41))
CATEGORICAL_FEATURES = tuple(f"c{i:02d}" for i in range(1, 11))
NATURALLY_MISSING = {"x05": 0.01, "x12": 0.03, "x23": 0.005, "x31": 0.02}

REGIONS = ("north", "south", "east", "west")
REGION_P = (0.35, 0.25, 0.25, 0.15)
CHANNELS = ("web", "app", "partner")
TIERS = ("basic", "plus", "premium")
CHANNEL_P = (0.50, 0.35, 0.15)  # weekends: wide_weekly_seasonality's shares
TIER_P = (0.50, 0.35, 0.15)
WEEKDAY_FACTORS = (1.08, 1.08, 1.06, 1.05, 1.03, 0.62, 0.58)  # Monday first
CHANNEL_RISK = (0.0, 0.9, -0.3)
TIER_RISK = (0.9, 0.0, -0.9)
REGION_RISK = (0.0, 0.2, -0.1, 0.1)
VOLUME_JITTER = 0.04
HOUR_WEIGHTS = 1.0 + 0.5 * np.cos(2 * np.pi * (np.arange(24) + 0.5 - 15.0) / 24.0)

INTERCEPT = -3.0
HIDDEN_SD = 0.8
CALIBRATION = 1.0 / np.sqrt(1.0 + np.pi * HIDDEN_SD**2 / 8.0)
MODEL_NOISE_SD = 0.2
LABEL_DELAY_DAYS = (1.0, 3.0)
# Mean and standard deviation of each numeric shape below, to put the features on one scale in the truth.
SHAPE_MOMENTS = ((0.0, 1.0), (1.1972, 0.7880), (1.0, 0.7071), (0.2857, 0.1597))


class WideGenerator(ModelGenerator):
    model = MODEL
    model_index = MODEL_INDEX
    label_columns = ("prediction_id", "label", "label_ts")

    @cached_property
    def shapes(self) -> dict[str, np.ndarray]:
        """Each feature's fixed parameters, from the seed only: numeric shape, scale and weight; categorical levels."""
        rng = s.world_rng(self.seed, MODEL_INDEX)
        return {
            "kind": rng.integers(0, 4, len(NUMERIC_FEATURES)),  # normal, lognormal, gamma, beta
            "scale": rng.uniform(0.5, 50.0, len(NUMERIC_FEATURES)),
            "weight": np.where(np.arange(len(NUMERIC_FEATURES)) < 8, rng.normal(0.0, 0.8, len(NUMERIC_FEATURES)), 0.0),
            "levels": rng.integers(3, 13, len(CATEGORICAL_FEATURES)),
        }

    def simulate_day(self, day: int) -> None:
        rng = self.rng(day)
        date = self.date(day)
        n = s.daily_volume(rng, self.rows_per_day, date, WEEKDAY_FACTORS, VOLUME_JITTER)
        ts = s.diurnal_timestamps(rng, n, date, HOUR_WEIGHTS)
        channel_p, tier_p = CHANNEL_P, TIER_P
        weekly = self.incidents.clean("wide_weekly_seasonality", day)
        if weekly is not None and date.weekday() in weekly.params["weekend_days"]:
            channel_p, tier_p = weekly.params["channel_shares"], weekly.params["tier_shares"]
        region = s.categorical(rng, n, REGION_P)
        channel = s.categorical(rng, n, channel_p)
        tier = s.categorical(rng, n, tier_p)

        shapes = self.shapes
        numeric, standardised = {}, []
        for i, name in enumerate(NUMERIC_FEATURES):
            kind = int(shapes["kind"][i])
            raw = _draw_numeric(rng, kind, n)
            standardised.append((raw - SHAPE_MOMENTS[kind][0]) / SHAPE_MOMENTS[kind][1])
            numeric[name] = np.round(shapes["scale"][i] * raw, 4)
        categorical = {}
        for i, name in enumerate(CATEGORICAL_FEATURES):
            levels = int(shapes["levels"][i])
            share = [1.0 / (v + 1.5) for v in range(levels)]  # Zipf-like: a few common values, a tail
            categorical[name] = s.strings([f"{name}_{v}" for v in range(levels)], s.categorical(rng, n, share))

        features = np.stack(standardised, axis=1)
        logit = (
            INTERCEPT
            + features @ shapes["weight"]
            + np.asarray(CHANNEL_RISK)[channel]
            + np.asarray(TIER_RISK)[tier]
            + np.asarray(REGION_RISK)[region]
        )
        label = (rng.random(n) < s.sigmoid(logit + rng.normal(0.0, HIDDEN_SD, n))).astype(np.int8)
        score = s.sigmoid(CALIBRATION * logit + rng.normal(0.0, MODEL_NOISE_SD, n))

        missing = {name: rng.random(n) < rate for name, rate in NATURALLY_MISSING.items()}
        fault = self.incidents.active("wide_feature_nulls", day)
        if fault is not None:
            assert fault.column is not None  # the fault is about one column
            broken = rng.random(n) < fault.params["share"]
            missing[fault.column] = missing.get(fault.column, np.zeros(n, dtype=bool)) | broken

        prediction_ids = s.sequential_ids(MODEL, date, n)
        table = pa.table(
            {
                "prediction_id": prediction_ids,
                "model_version": s.strings((VERSION,), np.zeros(n, dtype=np.int64)),
                "ts": s.timestamps(ts),
                "score": pa.array(score, type=pa.float64()),
                **{name: s.floats(values, missing.get(name)) for name, values in numeric.items()},
                **categorical,
                "region": s.strings(REGIONS, region),
                "channel": s.strings(CHANNELS, channel),
                "tier": s.strings(TIERS, tier),
            }
        )
        self.writer.write_predictions(day, [table])
        lo, hi = LABEL_DELAY_DAYS
        label_ts = ts + s.delay_us(rng.uniform(lo, hi, n))
        self.writer.add_labels(day, prediction_ids, label, label_ts)
        self.writer.end_day(day)


def _draw_numeric(rng: np.random.Generator, kind: int, n: int) -> np.ndarray:
    """A feature's values of one shape: normal, lognormal (sigma 0.6), gamma (2, 0.5) or beta (2, 5)."""
    if kind == 0:
        return rng.normal(0.0, 1.0, n)
    if kind == 1:
        return rng.lognormal(0.0, 0.6, n)
    if kind == 2:
        return rng.gamma(2.0, 0.5, n)
    return rng.beta(2.0, 5.0, n)
