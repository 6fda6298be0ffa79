"""One journal write per event-loop tick: the answers of a tick wait until their rows are
journaled together, none is released before, and one broken answer costs only its own rows."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import text

from core.contracts import PREDICTION_COLUMNS
from service.log_journal import Journal, Segment
from service.log_tick import TickJournal
from service.prediction_log import PredictionLog
from service.spill import JOURNAL_PREFIX, decode_line
from storage.writer import prediction_row
from tests.service.test_prediction_log import FakeClock, stored_ids
from tests.storage.records import make_records

_FEATURES = PREDICTION_COLUMNS.index("features")


class CountingJournal(Journal):
    """A journal that remembers how many rows each of its writes held."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.writes: list[int] = []

    def append(self, rows: Sequence[Sequence[Any]]) -> Segment | None:
        self.writes.append(len(rows))
        return super().append(rows)


def _rows(request: int) -> list[list[Any]]:
    return [prediction_row(make_records(1, seed=request)[0])]


def _journaled_ids(directory: Path) -> list[str]:
    return [
        decode_line(line)["request_id"]
        for segment in sorted(directory.glob(f"{JOURNAL_PREFIX}*"))
        for line in segment.read_bytes().splitlines()
    ]


def _log(tmp_path: Path, journal: Journal, url: str | None = None) -> PredictionLog:
    url = url or f"sqlite:///{tmp_path / 'unused.db'}"  # the writer is never turned
    return PredictionLog(
        url, journal.directory, batch_size=4, journal=journal, monotonic=FakeClock()
    )


def test_the_answers_of_a_tick_are_released_only_after_one_write_of_all_their_rows(tmp_path):
    journal = CountingJournal(tmp_path / "spill")
    tick = TickJournal(_log(tmp_path, journal), _rows)
    expected = [_rows(request)[0][0] for request in range(3)]
    seen_at_release: list[list[str]] = []

    async def answer(request: int) -> None:
        waiting = tick.submit(request)
        assert waiting is not None
        assert _journaled_ids(journal.directory) == []  # nothing written within the tick
        await waiting
        seen_at_release.append(_journaled_ids(journal.directory))

    async def main() -> None:
        await asyncio.gather(*(answer(request) for request in range(3)))

    asyncio.run(main())
    assert journal.writes == [3]
    assert seen_at_release == [expected] * 3


def test_off_an_event_loop_the_rows_are_written_at_once(tmp_path):
    journal = CountingJournal(tmp_path / "spill")
    tick = TickJournal(_log(tmp_path, journal), _rows)
    assert tick.submit(5) is None
    assert _journaled_ids(journal.directory) == [_rows(5)[0][0]]


def test_an_answer_whose_rows_cannot_be_made_costs_only_its_own(tmp_path):
    journal = CountingJournal(tmp_path / "spill")

    def make(request: int) -> list[list[Any]]:
        if request == 1:
            raise ValueError("a bug in one request's rows")
        return _rows(request)

    tick = TickJournal(_log(tmp_path, journal), make)

    async def main() -> None:
        waiting = [tick.submit(request) for request in range(3)]
        await asyncio.gather(*waiting)  # every answer is released

    asyncio.run(main())
    assert _journaled_ids(journal.directory) == [_rows(0)[0][0], _rows(2)[0][0]]


def test_a_cancelled_request_does_not_cancel_the_others_wait(tmp_path):
    journal = CountingJournal(tmp_path / "spill")
    tick = TickJournal(_log(tmp_path, journal), _rows)

    async def main() -> list[bool]:
        first, second = tick.submit(1), tick.submit(2)
        assert first is not None
        assert second is not None
        waiter = asyncio.ensure_future(first)
        waiter.cancel()
        await second
        return [first.cancelled(), second.done()]

    assert asyncio.run(main()) == [True, True]
    assert _journaled_ids(journal.directory) == [_rows(1)[0][0], _rows(2)[0][0]]


def test_a_ticks_answers_reach_the_store_each_filled(store_url, store_engine, tmp_path):
    journal = Journal(tmp_path / "spill")
    log = _log(tmp_path, journal, store_url)

    def fill(rows: list[list[Any]], request: int) -> None:
        for row in rows:
            row[_FEATURES] = {"text": f"request {request}"}

    tick = TickJournal(log, _rows, fill)

    async def main() -> None:
        await asyncio.gather(*(w for w in (tick.submit(r) for r in range(4)) if w is not None))

    asyncio.run(main())
    log.run_once()  # the tick's one entry holds a full batch: made, filled and written
    log.close()
    assert sorted(stored_ids(store_engine)) == sorted(_rows(r)[0][0] for r in range(4))
    with store_engine.connect() as connection:
        features = connection.execute(text("SELECT features FROM predictions")).scalars().all()
    assert len(features) == 4
    assert all("request" in str(value) for value in features)
    assert journal.pending == 0
