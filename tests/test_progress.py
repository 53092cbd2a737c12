"""A range run's log: progress through the days, every day that needs a reader, not a line per day."""

from types import SimpleNamespace

from wiring.progress import log_day


def _logged(total: int, notable: set[int] = frozenset()) -> tuple[list[str], list[str]]:
    info: list[str] = []
    warning: list[str] = []
    context = SimpleNamespace(log=SimpleNamespace(info=info.append, warning=warning.append))
    for position in range(1, total + 1):
        log_day(context, position, total, f"day {position}", notable=position in notable)
    return info, warning


def test_a_year_logs_about_a_tenth_of_its_days_and_every_notable_one():
    info, warning = _logged(365, notable={5, 200})
    assert info[0] == "day 1 (day 1 of 365)" and info[-1] == "day 365 (day 365 of 365)"
    assert 10 <= len(info) <= 12
    assert warning == ["day 5", "day 200"]


def test_a_short_run_logs_every_day():
    info, warning = _logged(3)
    assert info == ["day 1 (day 1 of 3)", "day 2 (day 2 of 3)", "day 3 (day 3 of 3)"] and warning == []
