"""Days validated together get the verdicts GX gives each day validated alone."""

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from closedloop.inputs.expectations import DAY_END, DAY_START, Expectation, day_parameters
from closedloop.inputs.gx_adapter import validate, validate_days

FIRST_DAY = dt.date(2026, 9, 1)

SUITE = [
    Expectation(
        "structure", "ExpectTableColumnsToMatchSet", {"column_set": ["id", "ts", "x", "c"], "exact_match": False}
    ),
    Expectation("structure", "ExpectColumnValuesToNotBeNull", {"column": "id"}),
    Expectation(
        "structure",
        "ExpectColumnValuesToBeBetween",
        {"column": "ts", "min_value": DAY_START, "max_value": DAY_END, "strict_max": True},
    ),
    Expectation("unique", "ExpectColumnValuesToBeUnique", {"column": "id"}),
    Expectation("nulls", "ExpectColumnValuesToNotBeNull", {"column": "x", "mostly": 0.9}),
    Expectation(
        "ranges", "ExpectColumnValuesToBeBetween", {"column": "x", "min_value": 0.0, "max_value": 10.0, "mostly": 0.8}
    ),
    Expectation("categories", "ExpectColumnValuesToBeInSet", {"column": "c", "value_set": ["a", "b"], "mostly": 0.75}),
]


def _day(rng: np.random.Generator, day: dt.date, rows: int, null_share: float, spill: float) -> pd.DataFrame:
    start = pd.Timestamp(day, tz="UTC")
    x = rng.normal(5, 4, rows)
    x[rng.random(rows) < null_share] = np.nan
    ids = [f"{day}-{i}" for i in rng.integers(0, rows * 3, rows)]  # repeats within the day, sometimes
    return pd.DataFrame(
        {
            "id": pd.array([None if rng.random() < 0.02 else i for i in ids], dtype="string"),
            "ts": start + pd.to_timedelta(rng.uniform(0, 86_400 * (1 + spill), rows), unit="s"),
            "x": x,
            "c": pd.array(rng.choice(["a", "b", "z", None], rows, p=[0.5, 0.3, 0.15, 0.05]), dtype="string"),
        }
    )


# Each example runs GX a dozen times: a few examples, and no shrinking (a failure prints its seed).
@settings(
    max_examples=8, deadline=None, phases=[Phase.explicit, Phase.generate], suppress_health_check=[HealthCheck.too_slow]
)
@given(
    seed=st.integers(0, 2**32 - 1),
    sizes=st.lists(st.integers(0, 60), min_size=2, max_size=5),
    null_share=st.sampled_from([0.0, 0.05, 0.15]),
    spill=st.sampled_from([0.0, 0.05]),
)
def test_stacked_days_get_the_verdicts_of_days_validated_alone(seed, sizes, null_share, spill):
    rng = np.random.default_rng(seed)
    days = [FIRST_DAY + dt.timedelta(days=i) for i in range(len(sizes))]
    frames = [_day(rng, d, n, null_share, spill) for d, n in zip(days, sizes, strict=True)]

    assert_same_as_alone(frames, days)


def test_more_unexpected_rows_than_gx_lists_values_of():
    """GX's complete result lists 200 unexpected values at most, and every unexpected row's index."""
    rng = np.random.default_rng(3)
    days = [FIRST_DAY + dt.timedelta(days=i) for i in range(3)]
    frames = [_day(rng, d, 400, 0.3, 0.0) for d in days]
    assert sum(f["c"].isin(["a", "b"]).eq(False).sum() for f in frames) > 200
    assert_same_as_alone(frames, days)


def assert_same_as_alone(frames: list[pd.DataFrame], days: list[dt.date]) -> None:
    parameters = [day_parameters(d) for d in days]
    # An equal suite of new objects, as every run of a check derives its own.
    together = validate_days(frames, [dataclasses.replace(e) for e in SUITE], parameters)
    for (outcomes, document), frame, p in zip(together, frames, parameters, strict=True):
        alone, _ = validate(frame, SUITE, p)
        assert [(o.check, o.expectation, o.column, o.success) for o in outcomes] == [
            (o.check, o.expectation, o.column, o.success) for o in alone
        ]
        for mine, theirs in zip(outcomes, alone, strict=True):
            assert mine.observed == theirs.observed and mine.expected == theirs.expected
        assert document["stacked_days"] == len(frames)
        assert len(document["results"]) == len(SUITE)


def test_a_missing_column_fails_only_when_the_days_are_validated_apart():
    """Days are stacked only with the same columns; the suite on one frame reports what GX reports."""
    frame = _day(np.random.default_rng(1), FIRST_DAY, 30, 0.0, 0.0).drop(columns=["c"])
    [(outcomes, _)] = validate_days([frame], SUITE, [day_parameters(FIRST_DAY)])
    structure = next(o for o in outcomes if o.expectation == "ExpectTableColumnsToMatchSet")
    assert not structure.success
