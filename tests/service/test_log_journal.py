"""The prediction log's write-ahead journal: records written before the answer, segments
deleted once settled, and a killed writer's segments adopted and replayed by another process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from core.contracts import PREDICTION_COLUMNS
from service.log_journal import Journal, encode_rows
from service.prediction_log import PredictionLog
from service.spill import JOURNAL_PREFIX, SpillDirectory, decode_line
from storage.writer import prediction_row
from tests.service.test_prediction_log import FakeClock, stored_ids
from tests.storage.records import make_records

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _rows(n: int, seed: int = 7) -> list[list[object]]:
    return [prediction_row(record) for record in make_records(n, seed=seed)]


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"{JOURNAL_PREFIX}*"))


def test_rows_are_journaled_as_json_arrays_that_decode_to_records(tmp_path):
    journal = Journal(tmp_path)
    rows = _rows(3)
    assert journal.append(rows) is not None
    (segment,) = _segments(tmp_path)
    lines = segment.read_bytes().splitlines()
    assert [decode_line(line) for line in lines] == [
        {**dict(zip(PREDICTION_COLUMNS, row, strict=True)), "ts": row[1].isoformat()}
        for row in rows
    ]
    assert encode_rows(rows) == segment.read_bytes()


def test_a_sealed_segment_is_deleted_once_all_its_records_are_settled(tmp_path):
    journal = Journal(tmp_path, max_segment_bytes=1)  # every append starts a new segment
    first = journal.append(_rows(2))
    second = journal.append(_rows(2, seed=8))
    assert first is not None
    assert second is not None
    assert len(_segments(tmp_path)) == 2
    journal.settle([(first, 1)])
    assert len(_segments(tmp_path)) == 2  # one record of the first segment is not settled
    journal.settle([(first, 1), (second, 2)])
    assert _segments(tmp_path) == [second.path]  # the active one stays until close
    journal.close()
    assert _segments(tmp_path) == []


def test_fsync_policies(tmp_path, monkeypatch):
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    clock = FakeClock()
    interval = Journal(tmp_path / "i", fsync="interval", fsync_interval_s=1.0, monotonic=clock)
    interval.append(_rows(1))
    interval.sync_if_due(turn=True)
    interval.append(_rows(1, seed=8))
    interval.sync_if_due(turn=True)  # within the interval: no second fsync
    clock.advance(1.0)
    interval.sync_if_due(turn=False)
    assert len(synced) == 2
    synced.clear()
    off = Journal(tmp_path / "o", fsync="off")
    off.append(_rows(1))
    off.sync_if_due(turn=True)
    assert synced == []


def test_the_log_deletes_its_journal_once_everything_is_stored(store_url, store_engine, tmp_path):
    spill = tmp_path / "spill"
    log = PredictionLog(
        store_url, spill, batch_size=10, journal=Journal(spill), monotonic=FakeClock()
    )
    log.submit_journaled(_rows(25))
    assert len(_segments(spill)) == 1
    while not log.run_once():
        if not log._buffer and not log._staged:  # everything taken and written
            break
    log.close()
    assert len(stored_ids(store_engine)) == 25
    assert _segments(spill) == []


def test_fill_completes_rows_on_the_writer_and_the_journal_keeps_them_bare(
    store_url, store_engine, tmp_path
):
    spill = tmp_path / "spill"
    journal = Journal(spill)
    log = PredictionLog(store_url, spill, batch_size=1, journal=journal, monotonic=FakeClock())
    features = PREDICTION_COLUMNS.index("features")

    def fill(rows: list[list[object]], text: str) -> None:
        for row in rows:
            row[features] = {"text": text}

    rows = _rows(1)
    rows[0][features] = None
    log.submit_journaled(rows, fill, "[REDACTED]")
    (segment,) = _segments(spill)
    assert decode_line(segment.read_bytes().splitlines()[0])["features"] is None
    log.run_once()  # a full batch: made, filled and written
    assert journal.pending == 0
    log.close()
    with store_engine.connect() as connection:
        stored = connection.execute(text("SELECT features FROM predictions")).scalar_one()
    assert stored == {"text": "[REDACTED]"} or stored == '{"text":"[REDACTED]"}'


KILLED = """
import os, signal, sys
from pathlib import Path
from service.log_journal import Journal
from service.prediction_log import PredictionLog
from storage.writer import prediction_row
from tests.storage.records import make_records

spill = Path(sys.argv[2])
log = PredictionLog(sys.argv[1], spill, journal=Journal(spill))
for i in range(0, 40, 4):  # answered requests; the writer never got to them
    log.submit_journaled([prediction_row(r) for r in make_records(40, seed=3)[i : i + 4]])
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_writers_journal_is_adopted_and_replayed(
    store_url, store_engine: Engine, tmp_path
):
    spill = tmp_path / "spill"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    killed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED), store_url, str(spill)],
        env=env,
        cwd=PROJECT_ROOT,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -9
    assert stored_ids(store_engine) == []
    assert len(_segments(spill)) == 1
    sibling = PredictionLog(store_url, spill, adopt_interval_s=0.0, monotonic=FakeClock())
    for _ in range(5):
        sibling.run_once()
    sibling.close()
    assert sorted(stored_ids(store_engine)) == sorted(
        r["request_id"] for r in make_records(40, seed=3)
    )
    assert _segments(spill) == []


def test_spill_directories_adopt_journal_segments_of_dead_processes_only(tmp_path):
    journal = Journal(tmp_path)
    journal.append(_rows(2))
    directory = SpillDirectory(tmp_path)
    assert directory.adopt_orphans() == 0  # its writer (this process) holds the lock
    journal.close()  # unsettled records: the segment is kept and unlocked, as by a death
    assert directory.adopt_orphans() == 2
    directory.release_all()


@pytest.mark.parametrize("policy", ["off", "batch", "interval"])
def test_every_policy_is_a_setting(policy, monkeypatch):
    from core.config import Settings

    monkeypatch.setenv("SERVEWATCH_LOG_FSYNC", policy)
    assert Settings().log_fsync == policy
