"""Periods: the days and hours closedloop judges, and how they are named in the lake.

A date is a day, a time-zone aware datetime on the hour is an hour; both are UTC. Every
stage that judges "the hour that has just ended" asks ``hour_has_ended``, so the ops guards and
the SLOs always agree on which hour that is.
"""

from __future__ import annotations

import datetime as dt

from closedloop.core.names import checked_day

UTC = dt.UTC
HOUR = dt.timedelta(hours=1)


class PeriodError(ValueError):
    """A period closedloop cannot judge; the message says what a period must be."""


def period_bounds(period: dt.date | dt.datetime) -> tuple[dt.datetime, dt.datetime, str]:
    """[start, end) in UTC and the cadence: a date is a day, an aware datetime on the hour is an hour."""
    if isinstance(period, dt.datetime):
        if period.tzinfo is None or period.minute or period.second or period.microsecond:
            raise PeriodError(f"an hourly period must be a time-zone aware datetime on the hour, got {period!r}")
        start = period.astimezone(UTC)
        return start, start + HOUR, "hourly"
    start = day_start(period)
    return start, start + dt.timedelta(days=1), "daily"


def day_start(day: str | dt.date) -> dt.datetime:
    """Midnight UTC at the start of ``day``."""
    return dt.datetime.combine(checked_day(day), dt.time(), tzinfo=UTC)


def period_key(period: dt.date | dt.datetime) -> str:
    """The period as the ``slo_evaluations.period`` string."""
    start, _, cadence = period_bounds(period)
    return start.date().isoformat() if cadence == "daily" else start.isoformat()


def period_start(key: str) -> dt.datetime:
    """When the period named by a ``slo_evaluations.period`` string begins (UTC)."""
    return dt.datetime.fromisoformat(key) if "T" in key else day_start(key)


def hour_has_ended(hour: dt.datetime, as_of: dt.datetime) -> bool:
    """True once the hour starting at ``hour`` is over at ``as_of``: its rows are all in."""
    return hour + HOUR <= as_of


def hours_to_judge(day: dt.date, as_of: dt.datetime | None) -> list[dt.datetime]:
    """Every hour of ``day``, or only the latest hour that had ended by ``as_of`` if it falls in the day.

    An hourly run (``as_of`` its tick) judges the hour that has just ended; any other run (the
    daily one, a backfill) judges the whole day.
    """
    start = day_start(day)
    hours = [start + h * HOUR for h in range(24)]
    if as_of is None or not start <= as_of < start + dt.timedelta(days=1, hours=1):
        return hours
    return [h for h in hours if hour_has_ended(h, as_of)][-1:]


def period_in_words(period: dt.date | dt.datetime | str) -> str:
    """A day as ``YYYY-MM-DD``, an hour as ``YYYY-MM-DD HH:00`` (UTC); lake period keys are accepted."""
    if isinstance(period, str):
        period = period_start(period) if "T" in period else dt.date.fromisoformat(period)
    if isinstance(period, dt.datetime):
        hour = period.astimezone(dt.UTC) if period.tzinfo else period  # closedloop's naive times are UTC already
        return f"{hour:%Y-%m-%d %H:00}"
    return period.isoformat()
