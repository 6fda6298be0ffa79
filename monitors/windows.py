"""Time windows: parsing, validation and the cadence-aligned windows a schedule runs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


class InvalidWindowError(ValueError):
    """A window's bounds are missing, unparsable, empty or inverted."""


def parse_time(text: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime (naive times are taken as UTC)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidWindowError(f"not an ISO 8601 time: {text!r}") from exc
    return to_utc(value)


def to_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, order=True)
class Window:
    """The half-open interval [start, end) in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", to_utc(self.start))
        object.__setattr__(self, "end", to_utc(self.end))
        if self.end <= self.start:
            raise InvalidWindowError(
                f"empty or inverted window: start {self.start.isoformat()} "
                f"is not before end {self.end.isoformat()}"
            )

    @classmethod
    def parse(cls, start: str, end: str) -> Window:
        return cls(parse_time(start), parse_time(end))

    @classmethod
    def ending_at(cls, end_epoch: float, seconds: float) -> Window:
        end = datetime.fromtimestamp(end_epoch, UTC)
        return cls(end - timedelta(seconds=seconds), end)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def aligned_end(now_epoch: float, every_seconds: int) -> float:
    """The latest multiple of `every_seconds` (since the epoch) at or before now."""
    return math.floor(now_epoch / every_seconds) * every_seconds


def due_windows(
    now_epoch: float,
    every_seconds: int,
    window_seconds: int,
    last_end_epoch: float | None,
    max_windows: int,
) -> list[Window]:
    """Completed windows not run yet, oldest first: ends on the cadence after `last_end_epoch`.

    Without a last end (first start ever) only the latest window is due; after downtime the
    missed ones are, at most `max_windows` of the newest.
    """
    latest = aligned_end(now_epoch, every_seconds)
    if last_end_epoch is None:
        ends = [latest]
    else:
        first = aligned_end(last_end_epoch, every_seconds) + every_seconds
        count = max(int((latest - first) // every_seconds) + 1, 0)
        ends = [first + i * every_seconds for i in range(max(count - max_windows, 0), count)]
    return [Window.ending_at(end, window_seconds) for end in ends]


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the ISO week holding `moment`."""
    day = to_utc(moment).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())
