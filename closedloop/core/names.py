"""Names that become parts of paths or SQL identifiers, validated in one place.

Model names, table names and partition keys end up in lake paths; a name with a separator or
``..`` could write outside the lake, so every such name is checked here before it is used.
"""

from __future__ import annotations

import datetime as dt
import re

ALL = "all"  # the whole population: every version pooled, every segment value, every route; never a valid name
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
_NAME = re.compile(NAME_PATTERN)


class InvalidNameError(ValueError):
    """A name or partition key that must not become part of a path."""


def checked_name(value: str, what: str = "name") -> str:
    """``value`` if it is a plain identifier (letters, digits, underscore; starts with a letter)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidNameError(
            f"invalid {what} {value!r}: use letters, digits and underscores, starting with a letter (at most 64)"
        )
    return value


def checked_day(value: str | dt.date) -> dt.date:
    """A partition key ``YYYY-MM-DD`` as a date; anything else is refused."""
    if isinstance(value, dt.datetime):
        raise InvalidNameError(f"invalid partition key {value!r}: expected a date, not a timestamp")
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise InvalidNameError(f"invalid partition key {value!r}: expected YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidNameError(f"invalid partition key {value!r}: {exc}") from None
