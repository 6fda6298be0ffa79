"""Time in UTC: normalising and printing instants, windows a schedule runs, ISO weeks."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta


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
    """Aware UTC datetime; naive values are taken to be UTC already."""
    if value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z` suffix (naive values are taken as UTC)."""
    return to_utc(value).isoformat().replace("+00:00", "Z")


def epoch(value: datetime) -> float:
    """Unix time of `value` (naive values are taken as UTC)."""
    return to_utc(value).timestamp()


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


def windows_within(span: Window, every_seconds: int, window_seconds: int) -> list[Window]:
    """The schedule's windows (ending on multiples of `every_seconds`) that lie within `span`,
    oldest first: the windows a scheduler running all along would have run."""
    first = math.ceil((epoch(span.start) + window_seconds) / every_seconds) * every_seconds
    last = aligned_end(epoch(span.end), every_seconds)
    ends = range(int(first), int(last) + 1, every_seconds)
    return [Window.ending_at(end, window_seconds) for end in ends]


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the ISO week holding `moment`."""
    day = to_utc(moment).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def midnight(day: date) -> datetime:
    """00:00 UTC of `day`."""
    return datetime.combine(day, time(0), tzinfo=UTC)


def days_between(start: date, end: date) -> list[date]:
    """The days from `start` up to `end` (exclusive)."""
    return [start + timedelta(days=i) for i in range((end - start).days)]


_WEEK = re.compile(r"(\d{4})-W(\d{2})")


class MalformedWeekError(ValueError):
    """Text that is not an ISO week such as 2026-W47."""


@dataclass(frozen=True, order=True)
class IsoWeek:
    """An ISO 8601 week: Monday 00:00 UTC up to the next Monday."""

    year: int
    week: int

    def __post_init__(self) -> None:
        try:
            date.fromisocalendar(self.year, self.week, 1)
        except ValueError as exc:
            raise MalformedWeekError(f"{self.year}-W{self.week:02d} is not an ISO week") from exc

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        match = _WEEK.fullmatch(text.strip())
        if match is None:
            raise MalformedWeekError(f"malformed week {text!r}: expected YYYY-Www, e.g. 2026-W47")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def containing(cls, day: date) -> IsoWeek:
        year, week, _ = day.isocalendar()
        return cls(year, week)

    @classmethod
    def last_full(cls, now: datetime) -> IsoWeek:
        """The latest week that has ended at `now`."""
        return cls.containing(to_utc(now).date()).previous

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    @property
    def start(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def end(self) -> date:
        """The Monday after the week (exclusive)."""
        return self.start + timedelta(days=7)

    @property
    def days(self) -> list[date]:
        return days_between(self.start, self.end)

    @property
    def previous(self) -> IsoWeek:
        return IsoWeek.containing(self.start - timedelta(days=7))

    @property
    def month_start(self) -> date:
        """First day of the month the week ends in: the month the forecast is for."""
        return (self.end - timedelta(days=1)).replace(day=1)

    def __str__(self) -> str:
        return self.label
