"""End to end on the simulator's wide model (50 features, 3 segments, weekends that run differently):
clean days open no incident although every day judges dozens of columns x drift figures, and the
one injected fault opens its own incident on its first day. ``python -m bench.false_alerts``
measures the rate over longer periods and several seeds (bench/README.md)."""

import pytest

from bench.false_alerts import MODEL, judged_clean_days, score_wide
from closedloop.control.scorecard import BASE

DAYS = 14  # the baseline week, three clean days, the fault's three days, one clean day after


@pytest.mark.slow
def test_fifty_features_stay_quiet_on_clean_days_and_the_fault_opens_its_own_incident(tmp_path):
    card = score_wide(tmp_path, days=DAYS, seed=7, rows_per_day=1_000)
    [fault] = card.detections
    assert (fault.truth_id, fault.on_time, fault.delay_days) == ("wide_feature_nulls", True, 0)
    assert (fault.slo, fault.subject) == ("inputs_within_drift_limits", "x17")
    assert card.false_alerts_of(BASE) == [] and judged_clean_days(card) == 4
    assert card.clean_days == {MODEL: DAYS - 3}
