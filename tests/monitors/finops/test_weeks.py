"""ISO weeks, the default week, and which week's report is due."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from core.timeutil import IsoWeek, MalformedWeekError
from monitors.finops.figures import data_range
from monitors.finops.report import due_week


@pytest.mark.parametrize(
    "text", ["2026-47", "2026-W7", "W47", "2026-W54", "2026-W00", "26-W47", ""]
)
def test_malformed_weeks_are_refused(text):
    with pytest.raises(MalformedWeekError):
        IsoWeek.parse(text)


def test_a_week_runs_monday_to_monday():
    week = IsoWeek.parse("2026-W47")
    assert (week.start, week.end) == (date(2026, 11, 16), date(2026, 11, 23))
    assert week.label == "2026-W47"
    assert week.previous.label == "2026-W46"
    assert IsoWeek.parse("2027-W01").previous == IsoWeek(2026, 53)  # 2026 has 53 ISO weeks


def test_the_last_full_week():
    assert IsoWeek.last_full(datetime(2026, 11, 23, 0, 0, tzinfo=UTC)).label == "2026-W47"
    assert IsoWeek.last_full(datetime(2026, 11, 22, 23, 59, tzinfo=UTC)).label == "2026-W46"
    assert IsoWeek.last_full(datetime(2027, 1, 4, 8, tzinfo=UTC)).label == "2026-W53"


def test_a_week_across_two_months_forecasts_the_month_it_ends_in():
    week = IsoWeek.parse("2026-W44")  # Mon 26 Oct to Sun 1 Nov
    assert week.month_start == date(2026, 11, 1)
    start, end = data_range(week)
    assert start == date(2026, 9, 28)
    assert end == date(2026, 11, 2)


def test_the_report_is_due_from_the_configured_weekday(tmp_path):
    wednesday = 3
    assert due_week(datetime(2026, 11, 25, 0, 0, tzinfo=UTC), wednesday, tmp_path) == "2026-W47"
    # Before Wednesday the latest due report is the one of the week before last.
    assert due_week(datetime(2026, 11, 24, 23, 59, tzinfo=UTC), wednesday, tmp_path) == "2026-W46"
    assert due_week(datetime(2026, 11, 23, 0, 0, tzinfo=UTC), 1, tmp_path) == "2026-W47"


def test_a_written_report_is_not_due_again(tmp_path):
    (tmp_path / "finops-2026-W47.html").write_text("<html></html>")
    assert due_week(datetime(2026, 11, 26, tzinfo=UTC), 3, tmp_path) is None
    assert due_week(datetime(2026, 11, 30, tzinfo=UTC), 3, tmp_path) is None  # W48 due Wed 2 Dec
    assert due_week(datetime(2026, 12, 2, tzinfo=UTC), 3, tmp_path) == "2026-W48"


def test_due_week_refuses_a_day_that_is_no_iso_weekday(tmp_path):
    with pytest.raises(ValueError, match="ISO weekday"):
        due_week(datetime(2026, 11, 26, tzinfo=UTC), 0, tmp_path)
