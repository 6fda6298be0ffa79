"""The prediction log against the real stores (SQLite and PostgreSQL): batching, spilling,
replay, shutdown and the pipeline counters."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, text

from core.catalog import SERVICE_METRICS
from core.confidence_grid import FINE_EDGES
from core.metrics import create_metrics
from monitors.aggregate_source import RollupAggregates, SqlAggregates
from service.prediction_log import PredictionLog
from service.spill import encode_records
from storage import rollups
from storage.writer import prediction_row
from tests.storage.records import T0, make_records

EVENTS = ("queued", "written", "spilled", "replayed", "dropped")


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll `predicate` until it holds or `timeout` passes (bounded, no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class Observed:
    """A fresh registry with the service metrics, read back by name."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = create_metrics(SERVICE_METRICS, self.registry)

    def events(self) -> dict[str, float]:
        return {
            event: self.registry.get_sample_value(
                "servewatch_prediction_log_records_total", {"event": event}
            )
            or 0.0
            for event in EVENTS
        }

    def backlog(self) -> float:
        return self.registry.get_sample_value("servewatch_prediction_log_spill_backlog") or 0.0

    def lag(self) -> float:
        return self.registry.get_sample_value("servewatch_prediction_log_replay_lag_seconds") or 0.0


def stored_ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT request_id FROM predictions")).scalars())


def row_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM predictions")).scalar_one())


def spill_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("spill-*.jsonl"))


def take_store_away(engine: Engine) -> None:
    """The store stops accepting predictions (as before its migrations ran)."""
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE predictions RENAME TO predictions_away"))


def bring_store_back(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE predictions_away RENAME TO predictions"))


@pytest.fixture
def observed() -> Observed:
    return Observed()


@pytest.fixture
def make_log(
    store_url: str, tmp_path: Path, observed: Observed
) -> Iterator[Callable[..., PredictionLog]]:
    """PredictionLogs on the test store, closed at the end of the test."""
    logs: list[PredictionLog] = []

    def make(**options: object) -> PredictionLog:
        settings: dict = {
            "spill_dir": tmp_path / "spill",
            "batch_size": 50,
            "flush_interval_s": 0.05,
            "retry_interval_s": 0.05,
            "metrics": observed.metrics,
            **options,
        }
        url = settings.pop("database_url", store_url)
        log = PredictionLog(url, **settings)  # type: ignore[arg-type]
        logs.append(log)
        return log

    yield make
    for log in logs:
        log.close(timeout=10)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_records_are_written_in_batches_of_the_configured_size(make_log, store_engine, observed):
    clock = FakeClock()  # never moves: the 30 s timer cannot fire, only a full batch or flush
    log = make_log(batch_size=10, flush_interval_s=30.0, monotonic=clock)
    log.start()
    records = make_records(25)
    for record in records:
        log.submit(record)

    assert wait_until(lambda: row_count(store_engine) == 20)
    # The last 5 wait for a full batch or the timer; the counter moves just after the commit.
    assert wait_until(lambda: observed.events()["written"] == 20)

    assert log.flush(timeout=10)  # flush does not wait for the timer (it never fires here)
    assert sorted(stored_ids(store_engine)) == sorted(r["request_id"] for r in records)
    assert observed.events() == {
        "queued": 25,
        "written": 25,
        "spilled": 0,
        "replayed": 0,
        "dropped": 0,
    }
    assert log.healthy


def test_records_trickling_in_are_written_together(make_log, store_engine, observed):
    """Records are encoded as they arrive (a tick at a time) but written as one batch."""
    clock = FakeClock()
    log = make_log(batch_size=1000, flush_interval_s=1.0, tick_s=0.05, monotonic=clock)
    records = make_records(8)
    for record in records:
        log.submit(record)
        log.run_once()  # each is taken and encoded on its own
        clock.advance(0.06)
    assert row_count(store_engine) == 0  # the first arrived 0.48 s ago
    clock.advance(0.6)
    log.run_once()
    assert row_count(store_engine) == 8
    assert observed.events()["written"] == 8


def test_the_writer_idles_while_records_wait_for_their_batch(make_log, store_engine):
    """Between writes the writer sleeps until the next tick, record or flush, and does not
    spin (its upkeep timers fall due while records wait, and must not wake it)."""
    clock = FakeClock()
    log = make_log(batch_size=1000, flush_interval_s=30.0, adopt_interval_s=0.01, monotonic=clock)
    log.submit(make_records(1)[0])
    log.run_once()  # the record is taken and waits
    clock.advance(0.2)  # the adoption timer is overdue
    linger, idle = log._waits()
    assert linger == log.tick_s
    assert idle == pytest.approx(29.8)
    clock.advance(30.0)
    log.run_once()
    assert row_count(store_engine) == 1


def test_a_record_that_cannot_be_encoded_is_set_aside_and_its_batch_written(
    make_log, store_engine, observed, tmp_path
):
    records = make_records(30)
    records[7] = {**records[7], "error_message": "broken \ud800 text"}
    clock = FakeClock()
    log = make_log(batch_size=1000, flush_interval_s=0.3, monotonic=clock)
    for record in records:
        log.submit(record)
        log.run_once()  # encoded ahead one by one, until the broken one
    clock.advance(0.31)
    log.run_once()
    assert row_count(store_engine) == 29
    assert records[7]["request_id"] not in stored_ids(store_engine)
    assert observed.events()["written"] == 29
    assert observed.events()["dropped"] == 1
    [rejected] = (tmp_path / "spill").glob("rejected-*.jsonl")
    assert records[7]["request_id"] in rejected.read_text()


def test_a_partial_batch_is_written_after_the_flush_interval(make_log, store_engine):
    clock = FakeClock()
    log = make_log(batch_size=1000, flush_interval_s=0.3, monotonic=clock)
    for record in make_records(3):
        log.submit(record)
    log.run_once()
    clock.advance(0.29)
    log.run_once()
    assert row_count(store_engine) == 0  # not before the interval
    clock.advance(0.02)
    log.run_once()
    assert row_count(store_engine) == 3


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="scheduling classes are Linux's")
def test_the_writer_thread_never_preempts_the_event_loop(make_log):
    log = make_log()
    log.start()
    (writer,) = [t for t in threading.enumerate() if t.name == "prediction-log"]
    assert writer.native_id is not None
    assert os.sched_getscheduler(writer.native_id) == os.SCHED_BATCH
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller (the loop) is unchanged


def test_close_flushes_everything_submitted(make_log, store_engine, tmp_path):
    log = make_log(batch_size=1000, flush_interval_s=30.0)
    log.start()
    records = make_records(120)
    for record in records:
        log.submit(record)
    log.close()
    assert sorted(stored_ids(store_engine)) == sorted(r["request_id"] for r in records)
    assert spill_files(tmp_path / "spill") == []


def test_a_full_queue_spills_to_disk_and_is_replayed(make_log, store_engine, observed, tmp_path):
    log = make_log(queue_size=5, batch_size=10)
    records = make_records(20)
    for record in records:  # writer not started: the queue fills after 5
        log.submit(record)
    assert not log.flush(timeout=0.01)  # no writer yet: 5 records wait in memory

    assert observed.events()["queued"] == 20
    assert observed.events()["spilled"] == 10  # a full overflow batch went to disk at once
    assert observed.backlog() == 10
    [path] = spill_files(tmp_path / "spill")
    assert len(path.read_bytes().splitlines()) == 10

    log.start()
    assert log.flush()
    assert wait_until(lambda: row_count(store_engine) == 20)
    assert sorted(stored_ids(store_engine)) == sorted(r["request_id"] for r in records)
    assert wait_until(lambda: observed.backlog() == 0)
    expected = {"queued": 20, "written": 5, "spilled": 15, "replayed": 15, "dropped": 0}
    assert wait_until(lambda: observed.events() == expected), observed.events()


def test_store_down_spills_then_replays_exactly_once(make_log, store_engine, observed, tmp_path):
    first, during, after = make_records(100, seed=1), make_records(230, seed=2), make_records(40, 3)
    an_hour_after_the_first_spilled = during[0]["ts"].timestamp() + 3600
    log = make_log(clock=lambda: an_hour_after_the_first_spilled)
    log.start()
    for record in first:
        log.submit(record)
    assert log.flush()
    assert row_count(store_engine) == 100

    take_store_away(store_engine)
    for record in during:
        log.submit(record)
    assert log.flush()  # durable: on disk
    assert not log.healthy
    assert observed.events()["spilled"] == 230
    assert observed.backlog() == 230
    assert observed.lag() == 3600  # age of the oldest spilled record, by the log's clock
    assert sum(len(p.read_bytes().splitlines()) for p in spill_files(tmp_path / "spill")) == 230

    bring_store_back(store_engine)
    for record in after:
        log.submit(record)
    assert wait_until(lambda: row_count(store_engine) == 370)
    assert wait_until(lambda: observed.backlog() == 0)
    assert log.healthy
    ids = stored_ids(store_engine)
    assert sorted(ids) == sorted(r["request_id"] for r in first + during + after)
    events = observed.events()
    assert events["replayed"] == events["spilled"] == 230
    assert events["written"] == 140
    assert events["dropped"] == 0
    assert observed.lag() == 0
    assert wait_until(lambda: spill_files(tmp_path / "spill") == [])


def test_what_cannot_reach_the_store_at_shutdown_is_replayed_by_the_next_process(
    make_log, store_engine, tmp_path
):
    records = make_records(75)
    take_store_away(store_engine)
    first = make_log()
    first.start()
    for record in records:
        first.submit(record)
    first.close()
    assert len(spill_files(tmp_path / "spill")) == 1

    bring_store_back(store_engine)
    second_metrics = Observed()
    second = make_log(metrics=second_metrics.metrics)
    second.start()
    assert wait_until(lambda: row_count(store_engine) == 75)
    assert wait_until(lambda: second_metrics.events()["replayed"] == 75)
    assert wait_until(lambda: spill_files(tmp_path / "spill") == [])


def test_leftovers_shared_by_two_workers_are_replayed_once(make_log, store_engine, tmp_path):
    records = make_records(300)
    take_store_away(store_engine)
    for part in range(3):  # three workers that exited while the store was away
        dead = make_log()
        dead.start()
        for record in records[part * 100 : (part + 1) * 100]:
            dead.submit(record)
        dead.close()
    assert len(spill_files(tmp_path / "spill")) == 3
    bring_store_back(store_engine)

    workers = [Observed(), Observed()]
    logs = [make_log(metrics=w.metrics, batch_size=20) for w in workers]
    for log in logs:
        log.start()

    assert wait_until(lambda: row_count(store_engine) == 300)
    assert wait_until(lambda: sum(w.events()["replayed"] for w in workers) == 300)
    assert sorted(stored_ids(store_engine)) == sorted(r["request_id"] for r in records)
    for log in logs:
        log.close()  # whatever either would still do is done: nothing is replayed twice
    assert sum(w.events()["replayed"] for w in workers) == 300


def test_a_torn_line_left_by_a_crash_is_dropped_and_counted(
    make_log, store_engine, observed, tmp_path
):
    records = make_records(12)
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    (spill_dir / "spill-424242-crashed.jsonl").write_bytes(
        encode_records(records) + b'{"request_id": "torn", "ts": "2026-11'
    )
    log = make_log()
    log.start()
    assert wait_until(lambda: row_count(store_engine) == 12)
    assert wait_until(lambda: observed.events()["dropped"] == 1)
    assert wait_until(lambda: observed.events()["replayed"] == 12)
    assert "torn" not in stored_ids(store_engine)
    assert wait_until(lambda: spill_files(spill_dir) == [])


def test_a_record_the_store_refuses_is_set_aside_not_blocking_the_rest(
    make_log, store_engine, observed, tmp_path, caplog
):
    records = make_records(40)
    broken = {**records[17], "tenant": None}  # NOT NULL: no retry can store it
    log = make_log()
    log.start()
    with caplog.at_level(logging.ERROR, logger="service.prediction_log"):
        for record in [*records[:17], broken, *records[18:]]:
            log.submit(record)
        assert log.flush()
    assert row_count(store_engine) == 39
    assert log.healthy
    assert observed.events()["dropped"] == 1
    assert observed.events()["written"] == 39
    [rejected] = (tmp_path / "spill").glob("rejected-*.jsonl")
    assert broken["request_id"] in rejected.read_text()
    assert any("rejected 1 record" in message for message in caplog.messages)


def test_text_no_store_can_encode_survives_the_spill_and_is_set_aside(
    make_log, store_engine, observed
):
    records = make_records(30)
    lone_surrogate = {**records[5], "error_message": "broken \ud800 text"}
    take_store_away(store_engine)
    log = make_log()
    log.start()
    for record in [*records[:5], lone_surrogate, *records[6:]]:
        log.submit(record)
    assert log.flush()
    assert observed.events()["spilled"] == 30

    bring_store_back(store_engine)
    assert wait_until(lambda: observed.backlog() == 0 and log.healthy)
    assert row_count(store_engine) == 29
    assert observed.events()["replayed"] == 29
    assert observed.events()["dropped"] == 1


def test_a_spilled_record_no_store_can_encode_is_set_aside_on_replay(
    make_log, store_engine, observed, tmp_path
):
    records = make_records(12)
    records[3] = {**records[3], "error_message": "broken \ud800 text"}  # JSON keeps it
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    (spill_dir / "spill-424242-left.jsonl").write_bytes(encode_records(records))
    log = make_log()
    log.run_once()  # adopts the file and replays its one chunk
    assert row_count(store_engine) == 11
    assert spill_files(spill_dir) == []
    assert observed.events()["replayed"] == 11
    assert observed.events()["dropped"] == 1
    assert records[3]["request_id"] not in stored_ids(store_engine)


def test_records_are_dropped_loudly_only_when_even_the_spill_fails(
    make_log, store_engine, observed, tmp_path, caplog
):
    not_a_directory = tmp_path / "spill-is-a-file"
    not_a_directory.write_text("")
    take_store_away(store_engine)
    log = make_log(spill_dir=not_a_directory)
    log.start()
    with caplog.at_level(logging.ERROR, logger="service.prediction_log"):
        for record in make_records(30):
            log.submit(record)
        assert log.flush()
    assert observed.events()["dropped"] == 30
    assert observed.events()["spilled"] == 0
    assert any("dropped 30 records" in message for message in caplog.messages)


def test_concurrent_submitters_lose_nothing(make_log, store_engine, observed):
    log = make_log(queue_size=64, batch_size=32)
    log.start()
    batches = [make_records(500, seed=seed) for seed in range(4)]
    threads = [threading.Thread(target=lambda rs=rs: [log.submit(r) for r in rs]) for rs in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert log.flush()
    assert wait_until(lambda: row_count(store_engine) == 2000)
    events = observed.events()
    assert events["queued"] == 2000
    assert events["written"] + events["spilled"] == 2000
    assert wait_until(lambda: observed.events()["replayed"] == observed.events()["spilled"])


def test_submit_after_close_still_reaches_disk(make_log, store_engine, tmp_path):
    log = make_log()
    log.start()
    log.close()
    log.submit(make_records(1)[0])
    assert len(spill_files(tmp_path / "spill")) == 1

    replayer = make_log()
    replayer.start()
    assert wait_until(lambda: row_count(store_engine) == 1)


def test_start_is_idempotent_and_flush_without_a_writer_reports_pending(make_log):
    log = make_log()
    log.submit(make_records(1)[0])
    assert not log.flush(timeout=0.1)
    log.start()
    log.start()
    assert log.flush()


def test_an_unstarted_log_spills_on_close(make_log, store_engine, tmp_path):
    log = make_log()
    for record in make_records(7):
        log.submit(record)
    log.close()
    [path] = spill_files(tmp_path / "spill")
    assert len(path.read_bytes().splitlines()) == 7
    assert row_count(store_engine) == 0


def test_a_reused_request_id_is_counted_as_dropped_not_written(
    make_log, store_engine, observed, caplog
):
    log = make_log()
    log.start()
    records = make_records(10)
    reused = {**records[3], "tenant": "someone-else"}
    for record in records:
        log.submit(record)
    assert log.flush(timeout=10)
    log.submit(reused)
    assert log.flush(timeout=10)

    assert row_count(store_engine) == 10
    assert observed.events()["written"] == 10
    assert observed.events()["dropped"] == 1
    assert "reused a stored request_id" in caplog.text


def _in_pairs(records: list[dict]) -> list[tuple[dict, dict]]:
    return list(zip(records[0::2], records[1::2], strict=True))


def test_records_made_later_by_the_writer_are_written_and_counted(make_log, store_engine, observed):
    made_on: set[str] = set()

    def make(first: dict, second: dict) -> list[dict]:
        made_on.add(threading.current_thread().name)
        return [first, second]

    log = make_log()
    log.start()
    records = make_records(40)
    for pair in _in_pairs(records):
        log.submit_later(make, *pair)
    log.submit(make_records(41)[40])  # plain records mix with them
    assert log.flush(timeout=10)

    assert row_count(store_engine) == 41
    assert made_on == {"prediction-log"}
    assert observed.events() == {
        "queued": 41,
        "written": 41,
        "spilled": 0,
        "replayed": 0,
        "dropped": 0,
    }


def test_a_maker_that_fails_loses_its_event_loudly_and_nothing_else(
    make_log, store_engine, observed, caplog
):
    def make(record: dict) -> list[dict]:
        if record["request_id"].endswith("-3"):
            raise RuntimeError("bug in the maker")
        return [record]

    log = make_log()
    log.start()
    with caplog.at_level(logging.ERROR, logger="service.prediction_log"):
        for record in make_records(10):
            log.submit_later(make, record)
        assert log.flush(timeout=10)
    assert row_count(store_engine) == 9
    events = observed.events()
    assert events["queued"] == 10
    assert events["written"] == 9
    assert events["dropped"] == 1
    assert "could not make the records" in caplog.text


def test_a_maker_returning_a_row_of_the_wrong_width_loses_only_its_event(
    make_log, store_engine, observed
):
    records = make_records(6)
    log = make_log()
    log.start()
    for i, record in enumerate(records):
        row = prediction_row(record)
        log.submit_later(lambda r: [r], row[:-1] if i == 2 else row)
    assert log.flush(timeout=10)
    assert sorted(stored_ids(store_engine)) == sorted(
        r["request_id"] for i, r in enumerate(records) if i != 2
    )
    assert observed.events()["dropped"] == 1
    assert log.healthy


def test_records_made_later_overflow_and_park_like_any_other(
    make_log, store_engine, observed, tmp_path
):
    log = make_log(queue_size=4, batch_size=100)
    records = make_records(20)
    for pair in _in_pairs(records):  # writer not started: 4 entries queue, 6 overflow
        log.submit_later(lambda a, b: [a, b], *pair)
    log.close()  # parks the queue (made now) and the overflow on disk

    assert observed.events()["queued"] == 20
    assert observed.events()["spilled"] == 20
    lines = b"".join(p.read_bytes() for p in spill_files(tmp_path / "spill")).splitlines()
    assert len(lines) == 20

    replayer = make_log()
    replayer.start()
    assert wait_until(lambda: row_count(store_engine) == 20)
    assert sorted(stored_ids(store_engine)) == sorted(r["request_id"] for r in records)


def test_rows_made_later_spill_as_named_records_and_are_replayed(
    make_log, store_engine, observed, tmp_path
):
    import json

    log = make_log()
    log.start()
    take_store_away(store_engine)
    records = make_records(30)
    for record in records:  # the service's makers return rows, not mappings
        log.submit_later(lambda r: [prediction_row(r)], record)
    assert log.flush(timeout=10)
    lines = b"".join(p.read_bytes() for p in spill_files(tmp_path / "spill")).splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == [r["request_id"] for r in records]

    bring_store_back(store_engine)
    assert wait_until(lambda: row_count(store_engine) == 30)
    assert sorted(stored_ids(store_engine)) == sorted(r["request_id"] for r in records)
    # The rows are visible as the replay commits, the counter moves just after.
    assert wait_until(lambda: observed.events()["replayed"] == 30)
    assert observed.events()["spilled"] == 30


def _same_frames(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """The same rows in any order, sums within 1e-9."""
    keys = [c for c in expected.columns if expected[c].dtype.kind not in "fi" or c == "bin"]
    ordered = [
        f.sort_values(keys, na_position="first").reset_index(drop=True) for f in (got, expected)
    ]
    pd.testing.assert_frame_equal(*ordered, check_dtype=False, check_exact=False, atol=1e-9)


def test_rollups_match_raw_aggregates_after_an_outage_a_replay_and_duplicates(
    make_log, store_engine, observed
):
    """Live writes folded, then a store outage (spilled, some of them duplicates), the replay
    into minutes already folded, live duplicates refused: every prediction folded once."""
    first = make_records(300, seed=21, step_s=2.5)
    during = make_records(200, seed=22, start=T0 + timedelta(seconds=30.5), step_s=3.1)
    after = make_records(100, seed=23, start=T0 + timedelta(seconds=900), step_s=1.3)
    log = make_log()
    log.start()
    for record in first:
        log.submit(record)
    assert log.flush()
    assert rollups.fold_pending(store_engine) == 300
    take_store_away(store_engine)
    for record in during + first[:40]:  # the outage spills, a client retry among it
        log.submit(record)
    assert log.flush()
    assert observed.events()["spilled"] == 240
    bring_store_back(store_engine)
    for record in after + first[100:130] + during[:20]:  # more retries, refused by request_id
        log.submit(record)
    assert wait_until(lambda: observed.backlog() == 0)
    assert log.flush()
    assert wait_until(lambda: row_count(store_engine) == 600)
    rollups.fold_pending(store_engine)

    raw, rolled = SqlAggregates(store_engine), RollupAggregates(store_engine)
    assert int(rolled.status_counts(T0, T0 + timedelta(hours=1))["n"].sum()) == 600
    for start, end in (
        (T0, T0 + timedelta(hours=1)),
        (T0 + timedelta(seconds=45.5), T0 + timedelta(seconds=1000.2)),
    ):
        for name in ("class_counts", "status_counts", "compute_totals", "hourly_counts"):
            _same_frames(getattr(rolled, name)(start, end), getattr(raw, name)(start, end))
        _same_frames(
            rolled.confidence_histogram(start, end, FINE_EDGES),
            raw.confidence_histogram(start, end, FINE_EDGES),
        )
        _same_frames(rolled.daily_compute_totals(start, end), raw.daily_compute_totals(start, end))
