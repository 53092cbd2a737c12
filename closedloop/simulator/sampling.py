"""Random-number and vector helpers shared by the model generators.

Every random draw of the simulator goes through :func:`day_rng` or :func:`world_rng`, so a
simulated day depends only on ``(seed, model, day)``: days are independent and reproducible, and
the first ``k`` days of a long run equal the first ``k`` days of a short one (as long as the same
incidents fit).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

US_PER_SECOND = 1_000_000
US_PER_HOUR = 3_600 * US_PER_SECOND
US_PER_DAY = 24 * US_PER_HOUR

TIMESTAMP = pa.timestamp("us", tz="UTC")

# Streams of the seed sequence. Keys always have the same length: numpy's SeedSequence treats
# [a, b] and [a, b, 0] alike, so variable-length keys could collide.
_STREAM_DAY = 0
_STREAM_WORLD = 1
_STREAM_SHADOW = 2
_STREAM_SPLIT = 3

_EPOCH = dt.date(1970, 1, 1)


def day_rng(seed: int, model_index: int, day: int) -> np.random.Generator:
    """Generator for one model and one simulated day (0-based)."""
    return np.random.default_rng([seed, model_index, _STREAM_DAY, day])


def shadow_rng(seed: int, model_index: int, day: int) -> np.random.Generator:
    """Generator for a shadow version's scores of one day, apart from the day's stream.

    Shadow traffic draws nothing from :func:`day_rng`, so adding it leaves every served table as it was.
    """
    return np.random.default_rng([seed, model_index, _STREAM_SHADOW, day])


def split_rng(seed: int, model_index: int, day: int) -> np.random.Generator:
    """Generator for a day's traffic split between versions, apart from the day's stream.

    A canary drawn from it leaves every other draw of the day as it was.
    """
    return np.random.default_rng([seed, model_index, _STREAM_SPLIT, day])


def world_rng(seed: int, model_index: int) -> np.random.Generator:
    """Generator for a model's fixed "world" (merchant catalogue and the like)."""
    return np.random.default_rng([seed, model_index, _STREAM_WORLD, 0])


def day_start_us(day: dt.date) -> int:
    """Microseconds since the Unix epoch at 00:00 UTC of ``day``."""
    return (day - _EPOCH).days * US_PER_DAY


def daily_volume(
    rng: np.random.Generator,
    base: int,
    day: dt.date,
    weekday_factors: Sequence[float],
    jitter: float,
) -> int:
    """Rows for one day: ``base`` x weekday factor (Monday first, mean 1) x (1 + N(0, jitter))."""
    factors = np.asarray(weekday_factors, dtype=float)
    factor = factors[day.weekday()] / factors.mean()
    noise = 1.0 + float(np.clip(rng.normal(0.0, jitter), -3 * jitter, 3 * jitter))
    return max(1, round(base * factor * noise))


def diurnal_timestamps(rng: np.random.Generator, n: int, day: dt.date, hour_weights: np.ndarray) -> np.ndarray:
    """``n`` sorted int64 UTC microsecond timestamps within ``day``; hour drawn by weight."""
    weights = np.asarray(hour_weights, dtype=float)
    hours = rng.choice(24, size=n, p=weights / weights.sum())
    offsets = rng.integers(0, US_PER_HOUR, size=n)
    ts = day_start_us(day) + hours.astype(np.int64) * US_PER_HOUR + offsets
    return np.sort(ts)


def hour_of(ts_us: np.ndarray) -> np.ndarray:
    """UTC hour (0-23) of int64 microsecond timestamps."""
    return (ts_us % US_PER_DAY) // US_PER_HOUR


def categorical(rng: np.random.Generator, n: int, probs: Sequence[float]) -> np.ndarray:
    """Indices drawn from a categorical distribution (probabilities normalised)."""
    p = np.asarray(probs, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def strings(values: Sequence[str], idx: np.ndarray) -> pa.Array:
    """Arrow ``string`` array with ``values[idx]`` (vectorised through ``take``)."""
    return pa.array(list(values), type=pa.string()).take(pa.array(idx, type=pa.int64()))


def floats(values: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
    """Arrow ``float64`` array; rows where ``null_mask`` is true become nulls (not NaN)."""
    values = np.asarray(values, dtype=np.float64)
    if null_mask is None or not null_mask.any():
        return pa.array(values, type=pa.float64())
    return pa.array(values, type=pa.float64(), mask=np.asarray(null_mask, dtype=bool))


def timestamps(ts_us: np.ndarray) -> pa.Array:
    """Arrow ``timestamp[us, tz=UTC]`` array from int64 microseconds."""
    return pa.array(np.asarray(ts_us, dtype=np.int64), type=pa.int64()).cast(TIMESTAMP)


def sequential_ids(prefix: str, day: dt.date, n: int, sep: str = "-") -> pa.Array:
    """Unique ids ``<prefix>-YYYYMMDD-000001`` ... for one day (``sep`` between the parts)."""
    stem = f"{prefix}{sep}{day:%Y%m%d}{sep}"
    return pa.array([f"{stem}{i:06d}" for i in range(1, n + 1)], type=pa.string())


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def lognormal(rng: np.random.Generator, median: float | np.ndarray, sigma: float, size: int) -> np.ndarray:
    """Lognormal draws parameterised by their median."""
    return np.asarray(median) * np.exp(rng.normal(0.0, sigma, size))


def delay_us(days: np.ndarray) -> np.ndarray:
    """Fractional days to int64 microseconds."""
    return np.round(np.asarray(days) * US_PER_DAY).astype(np.int64)
