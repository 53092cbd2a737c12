"""The one bound type: each kind judges like the comparison it stands for, at warn and error levels."""

import math
import statistics

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from closedloop.core.bounds import Bound, LearnedLimits
from closedloop.core.specs import SLOSpec

values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
limits = st.floats(min_value=0.0, max_value=1e3, allow_nan=False)


@given(values, values, st.booleans())
def test_upper_and_lower_bounds_break_exactly_where_the_comparison_fails(value, limit, strict):
    upper, lower = Bound(type="upper", error=limit, strict=strict), Bound(type="lower", error=limit, strict=strict)
    assert upper.breaks(value) == (value >= limit if strict else value > limit)
    assert lower.breaks(value) == (value <= limit if strict else value < limit)
    assert (upper.shortfall(value) > 0) <= upper.breaks(value)  # on the bad side means broken
    assert upper.shortfall(value) == pytest.approx(value - limit) and lower.shortfall(value) == pytest.approx(
        limit - value
    )


@given(values, limits)
def test_absolute_bounds_judge_the_size_of_a_signed_change(value, limit):
    bound = Bound(type="absolute", error=limit)
    assert bound.breaks(value) == bound.breaks(-value) == (abs(value) > limit)


@given(st.floats(min_value=1e-6, max_value=1e6), st.floats(min_value=1.0, max_value=100.0))
def test_ratio_bounds_are_symmetric_in_the_factor(value, limit):
    assume(abs(abs(math.log(value)) - math.log(limit)) > 1e-9)  # 1 / (1 / x) is not always x at the limit itself
    bound = Bound(type="ratio", error=limit)
    assert bound.breaks(value) == bound.breaks(1 / value)
    if limit > 1.0:
        assert (
            bound.severity(value)
            == pytest.approx(bound.severity(1 / value))
            == pytest.approx(math.log(max(value, 1 / value)) / math.log(limit))
        )


def test_levels_warn_before_they_err_and_a_bound_without_limits_judges_nothing():
    psi = Bound(type="upper", warn=0.1, error=0.25)
    assert [psi.level(v) for v in (0.05, 0.1, 0.2, 0.25, 0.3)] == ["ok", "ok", "warn", "warn", "error"]
    assert psi.limit("warn") == 0.1 and psi.limit("error") == 0.25 and psi.severity(0.125) == pytest.approx(0.5)
    floor = Bound(type="lower", warn=0.85, error=0.8)
    assert [floor.level(v) for v in (0.9, 0.84, 0.79)] == ["ok", "warn", "error"]
    assert Bound(type="upper").level(1e9) == "ok" and not Bound(type="upper").breaks(1e9)
    band = Bound(type="band", error=(0.05, 0.2))
    assert [band.breaks(v) for v in (0.04, 0.05, 0.2, 0.21)] == [True, False, False, True]
    assert band.shortfall(0.25) == pytest.approx(0.05) and band.describe() == "within [0.05, 0.2]"


@pytest.mark.parametrize(
    "spec, error",
    [
        ({"type": "upper", "warn": 0.3, "error": 0.2}, "warn 0.3 is above error 0.2"),
        ({"type": "lower", "warn": 0.7, "error": 0.8}, "warn 0.7 is below error 0.8"),
        ({"type": "band", "error": 0.2}, "band's limits are \\[low, high\\] pairs"),
        ({"type": "band", "error": (0.3, 0.2)}, "band low 0.3 is above high 0.2"),
        ({"type": "ratio", "error": 0.5}, "ratio limit must be at least 1.0"),
        ({"type": "upper", "error": 1, "margin": 2}, "Extra inputs"),
    ],
)
def test_inconsistent_bounds_are_refused_with_the_reason(spec, error):
    with pytest.raises(ValueError, match=error):
        Bound.model_validate(spec)


@pytest.mark.parametrize(
    "comparison, threshold, value, breach",
    [
        ("<", 1.0, 1.0, True),
        ("<=", 1.0, 1.0, False),
        (">", 1.0, 1.0, True),
        (">=", 1.0, 1.0, False),
        (">=", 1.0, 0.9, True),
    ],
)
def test_an_slo_comparison_is_the_bound_it_says(comparison, threshold, value, breach):
    slo = SLOSpec(name="s", metric="m", comparison=comparison, threshold=threshold, severity="warn")
    assert slo.bound.breaks(value) == breach
    assert slo.bound.describe() == f"{comparison} {threshold}"


# Learned limits: taught by the reference's own values


@given(st.lists(st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), min_size=3, max_size=60), st.floats(0.5, 5))
def test_sd_limits_are_the_reference_mean_plus_or_minus_k_sample_deviations(reference, k):
    mean, sd = statistics.fmean(reference), statistics.stdev(reference)
    learned = LearnedLimits(method="sd", k=k)
    low, high = learned.bound(reference).error
    assert (low, high) == (pytest.approx(mean - k * sd, abs=1e-6), pytest.approx(mean + k * sd, abs=1e-6))
    assert LearnedLimits(method="sd", k=k, side="upper").bound(reference).error == pytest.approx(high, abs=1e-6)
    assert LearnedLimits(method="sd", k=k, side="lower").bound(reference).type == "lower"


def test_share_and_quantile_limits_on_hand_made_references():
    share = LearnedLimits(method="share", share=0.2).bound([0.05, 0.07, 0.06])
    assert share.error == pytest.approx((0.048, 0.072))
    assert share.breaks(0.075) and not share.breaks(0.07)
    # 101 values 0..100: the 5% and 95% quantiles are 5 and 95 (linear interpolation lands on them).
    quantile = LearnedLimits(method="quantile", quantiles=(0.05, 0.95)).bound([float(v) for v in range(101)])
    assert quantile.error == pytest.approx((5.0, 95.0))
    assert LearnedLimits(method="share", share=0.5).bound([-2.0, -2.0, -2.0]).error == pytest.approx((-3.0, -1.0))


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"method": "share"}, "needs share"),
        ({"method": "quantile"}, "needs quantiles"),
        ({"method": "quantile", "quantiles": (0.9, 0.1)}, "0 <= low < high <= 1"),
        ({"method": "quantile", "quantiles": (0.1, 0.9), "k": 2}, "k is the width of method 'sd'"),
        ({"seasonal": "weekday", "periods": 10}, "at least 14 periods"),
    ],
)
def test_learned_limits_refuse_a_width_that_does_not_fit_the_method(spec, says):
    with pytest.raises(ValueError, match=says):
        LearnedLimits(**spec)


def test_learned_limits_read_as_a_person_says_them():
    assert LearnedLimits().describe() == "within 3 sd of the mean of the first 14 periods"
    assert (
        LearnedLimits(
            reference="trailing", periods=28, method="share", share=0.2, side="upper", seasonal="weekday"
        ).describe()
        == "at most 20% above the mean of the last 28 periods (same weekday)"
    )
    slo = SLOSpec(
        name="s", metric="m", band=(0.005, 0.1), per_version=True, versions={"v12": {"band": (0.08, 0.16)}},
        severity="page",
    )  # fmt: skip
    assert slo.describe_bound() == "within [0.005, 0.1] (v12 within [0.08, 0.16])"
    assert slo.bound_for("v12").error == (0.08, 0.16) and slo.bound_for("v11").error == (0.005, 0.1)
