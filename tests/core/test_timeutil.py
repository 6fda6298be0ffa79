"""Windows: parsing, validation and cadence alignment."""

from datetime import UTC, datetime, timedelta

import pytest

from core.timeutil import (
    InvalidWindowError,
    Window,
    due_windows,
    parse_time,
    week_start,
    windows_within,
)

T = datetime(2026, 11, 16, 12, 0, tzinfo=UTC).timestamp()


def test_parse_accepts_z_offsets_and_naive_utc():
    assert parse_time("2026-11-16T12:00:00Z") == datetime(2026, 11, 16, 12, tzinfo=UTC)
    assert parse_time("2026-11-16T13:00:00+01:00") == datetime(2026, 11, 16, 12, tzinfo=UTC)
    assert parse_time("2026-11-16T12:00:00") == datetime(2026, 11, 16, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("yesterday", "2026-11-16T00:00:00Z", "not an ISO 8601 time"),
        ("2026-11-16T00:00:00Z", "2026-11-16T00:00:00Z", "empty or inverted"),
        ("2026-11-16T01:00:00Z", "2026-11-16T00:00:00Z", "empty or inverted"),
    ],
)
def test_bad_windows_are_refused_with_a_clear_message(start, end, message):
    with pytest.raises(InvalidWindowError, match=message):
        Window.parse(start, end)


def test_first_run_only_takes_the_latest_completed_window():
    windows = due_windows(T + 170, 300, 3600, None, max_windows=10)
    assert len(windows) == 1
    assert windows[0].end.timestamp() == T
    assert windows[0].seconds == 3600


def test_nothing_is_due_until_the_next_cadence_point():
    assert due_windows(T + 299, 300, 3600, T, max_windows=10) == []
    assert [w.end.timestamp() for w in due_windows(T + 300, 300, 3600, T, 10)] == [T + 300]


def test_missed_windows_are_caught_up_oldest_first_up_to_a_limit():
    ends = [w.end.timestamp() for w in due_windows(T + 3000, 300, 600, T, max_windows=100)]
    assert ends == [T + 300 * k for k in range(1, 11)]
    capped = [w.end.timestamp() for w in due_windows(T + 3000, 300, 600, T, max_windows=3)]
    assert capped == [T + 2400, T + 2700, T + 3000]


def test_week_start_is_monday_midnight_utc():
    sunday_night = datetime(2026, 11, 22, 23, 59, tzinfo=UTC)
    assert week_start(sunday_night) == datetime(2026, 11, 16, tzinfo=UTC)
    assert week_start(sunday_night + timedelta(minutes=1)) == datetime(2026, 11, 23, tzinfo=UTC)


def test_windows_within_a_span_are_the_schedules_that_fit_in_it_oldest_first():
    start = datetime(2026, 11, 16, 10, 2, tzinfo=UTC)
    span = Window(start, start + timedelta(minutes=78))  # 10:02 .. 11:20
    windows = windows_within(span, every_seconds=300, window_seconds=3600)
    assert [w.end.strftime("%H:%M") for w in windows] == ["11:05", "11:10", "11:15", "11:20"]
    assert all(w.seconds == 3600 and span.start <= w.start for w in windows)
    assert windows_within(span, every_seconds=3600, window_seconds=3600) == []
    hourly = windows_within(Window(start, start + timedelta(hours=3)), 3600, 3600)
    assert [(w.start.hour, w.end.hour) for w in hourly] == [(11, 12), (12, 13)]
