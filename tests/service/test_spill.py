"""Spill files: durable JSON lines, torn tails, and lock-based ownership across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.contracts import PREDICTION_COLUMNS
from service.spill import (
    REJECTED_PREFIX,
    SpillDirectory,
    SpillFile,
    append_rejected,
    decode_line,
    decode_lines,
    encode_records,
    record_time,
)
from tests.storage.records import T0, make_records

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def spill_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("spill-*.jsonl"))


def replay_all(directory: SpillDirectory, batch: int = 1000) -> tuple[list[dict], int]:
    """Read every pending record the directory holds, committing as a replayer would."""
    records: list[dict] = []
    bad = 0
    while (found := directory.next_chunk(batch)) is not None:
        spill, chunk = found
        records.extend(chunk.records)
        bad += chunk.bad_lines
        directory.commit(spill, chunk)
    return records, bad


def test_records_round_trip_as_json_lines_with_iso_timestamps():
    records = make_records(3)
    data = encode_records(records)
    lines = data.split(b"\n")
    assert lines[-1] == b""
    assert len(lines) == 4
    decoded = [decode_line(line) or {} for line in lines[:-1]]
    assert decoded[0]["ts"] == records[0]["ts"].isoformat()
    assert decoded[0]["probabilities"] == records[0]["probabilities"]
    assert [d["request_id"] for d in decoded] == [r["request_id"] for r in records]
    assert decode_line(b'{"request_id": "x", "ts') is None
    assert decode_line(b"[1, 2]") is None


def test_journal_rows_written_before_a_column_was_appended_still_decode():
    row = [f"value {i}" for i in range(len(PREDICTION_COLUMNS))]
    older = json.dumps(row[:-1]).encode()  # a journal of the release before the last column
    record = decode_line(older)
    assert record == dict(zip(PREDICTION_COLUMNS[:-1], row, strict=False))
    assert PREDICTION_COLUMNS[-1] not in record  # stored as null
    assert decode_line(json.dumps([*row, "one too many"]).encode()) is None
    assert decode_line(json.dumps(row[:5]).encode()) is None  # not a row at all


def test_lines_are_decoded_together_but_never_merged_or_misread():
    assert decode_lines([b'{"a":1}', b'{"b":2}']) == ([{"a": 1}, {"b": 2}], 0)
    assert decode_lines([b'{"a":1}', b"7", b"[]"]) == ([{"a": 1}], 2)
    # Two broken halves that would parse as one value when joined: read line by line.
    assert decode_lines([b'{"a":1}', b"[1", b"2]", b'{"b":2}']) == ([{"a": 1}, {"b": 2}], 2)
    assert decode_lines([]) == ([], 0)


def test_record_time_reads_aware_naive_and_string_timestamps():
    assert record_time({"ts": T0}) == T0.timestamp()
    assert record_time({"ts": T0.replace(tzinfo=None)}) == T0.timestamp()
    assert record_time({"ts": "2026-11-16T00:00:00+00:00"}) == T0.timestamp()
    assert record_time({"ts": "not a time"}) is None
    assert record_time({}) is None


def test_appended_batches_are_replayed_in_order_and_the_file_removed(tmp_path):
    directory = SpillDirectory(tmp_path)
    records = make_records(25)
    directory.append(records[:10])
    directory.append(records[10:])
    assert directory.backlog == 25
    assert directory.oldest == T0.timestamp()
    [path] = spill_files(tmp_path)
    assert path.name.startswith(f"spill-{os.getpid()}-")

    replayed, bad = replay_all(directory, batch=7)

    assert [r["request_id"] for r in replayed] == [r["request_id"] for r in records]
    assert bad == 0
    assert directory.backlog == 0
    assert directory.oldest is None
    assert spill_files(tmp_path) == []


def test_a_replay_that_is_not_committed_is_read_again(tmp_path):
    directory = SpillDirectory(tmp_path)
    directory.append(make_records(5))
    spill, first = directory.next_chunk(3)  # type: ignore[misc]
    spill_again, again = directory.next_chunk(3)  # type: ignore[misc]
    assert spill_again is spill
    assert [r["request_id"] for r in again.records] == [r["request_id"] for r in first.records]
    directory.commit(spill, first)
    assert directory.backlog == 2
    assert directory.oldest == record_time(make_records(5)[3])


def test_appends_after_a_replay_started_go_to_a_new_file(tmp_path):
    directory = SpillDirectory(tmp_path)
    directory.append(make_records(4, seed=1))
    spill, chunk = directory.next_chunk(2)  # type: ignore[misc]
    directory.append(make_records(3, seed=2))
    assert len(spill_files(tmp_path)) == 2
    directory.commit(spill, chunk)
    replayed, _ = replay_all(directory)
    assert {r["request_id"] for r in replayed} == {
        *(r["request_id"] for r in make_records(4, seed=1)[2:]),
        *(r["request_id"] for r in make_records(3, seed=2)),
    }


def test_a_torn_last_line_is_counted_bad_and_the_rest_replayed(tmp_path):
    records = make_records(6)
    path = tmp_path / "spill-999999-dead.jsonl"
    path.write_bytes(encode_records(records) + b'{"request_id": "req-torn", "ts": "2026-1')
    directory = SpillDirectory(tmp_path)

    assert directory.adopt_orphans() == 7
    replayed, bad = replay_all(directory, batch=4)

    assert [r["request_id"] for r in replayed] == [r["request_id"] for r in records]
    assert bad == 1
    assert not path.exists()


def test_corrupt_lines_in_the_middle_and_lines_longer_than_a_read_block(tmp_path):
    big = make_records(1, seed=3)[0] | {"features": {"text": "x" * 600_000}}
    good = make_records(2, seed=4)
    path = tmp_path / "spill-999999-mixed.jsonl"
    path.write_bytes(encode_records([good[0]]) + b"garbage\n" + encode_records([big, good[1]]))
    directory = SpillDirectory(tmp_path)
    directory.adopt_orphans()

    replayed, bad = replay_all(directory, batch=10)

    assert [r["request_id"] for r in replayed] == [
        good[0]["request_id"],
        big["request_id"],
        good[1]["request_id"],
    ]
    assert len(replayed[1]["features"]["text"]) == 600_000
    assert bad == 1


def test_a_file_held_by_another_owner_cannot_be_adopted(tmp_path):
    writer = SpillDirectory(tmp_path)  # flock is per open file: a second owner in one process
    writer.append(make_records(3))
    other = SpillDirectory(tmp_path)
    assert other.adopt_orphans() == 0
    assert other.backlog == 0

    writer.release_all()  # the writer closes (or dies): its file becomes an orphan

    assert other.adopt_orphans() == 3
    assert SpillDirectory(tmp_path).adopt_orphans() == 0  # now the adopter holds it
    replayed, _ = replay_all(other)
    assert len(replayed) == 3


def test_a_file_replayed_and_deleted_meanwhile_is_not_claimed(tmp_path):
    path = tmp_path / "spill-1-gone.jsonl"
    path.write_bytes(encode_records(make_records(2)))
    first = SpillFile.claim(path)
    assert first is not None
    first.discard()
    assert SpillFile.claim(path) is None

    # Same name, new file: a stale open of the old one must not count.
    path.write_bytes(encode_records(make_records(1)))
    stale_fd = os.open(path, os.O_RDONLY)
    path.unlink()
    path.write_bytes(encode_records(make_records(4)))
    claimed = SpillFile.claim(path)
    os.close(stale_fd)
    assert claimed is not None
    assert claimed.pending == 4
    claimed.release()


def test_rejected_records_are_kept_apart_and_never_adopted(tmp_path):
    path = append_rejected(tmp_path, make_records(2), "IntegrityError: NOT NULL")
    assert path.name.startswith(REJECTED_PREFIX)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["reason"] for line in lines] == ["IntegrityError: NOT NULL"] * 2
    assert SpillDirectory(tmp_path).adopt_orphans() == 0


def test_release_all_keeps_pending_files_and_removes_empty_ones(tmp_path):
    directory = SpillDirectory(tmp_path)
    directory.append(make_records(2))
    empty = SpillFile.create(tmp_path)
    empty.release()
    adopter = SpillDirectory(tmp_path)
    adopter.adopt_orphans()
    adopter.release_all()
    directory.release_all()
    assert len(spill_files(tmp_path)) == 1


def test_oldest_is_the_first_pending_record_time(tmp_path):
    directory = SpillDirectory(tmp_path)
    later = make_records(2, start=datetime(2027, 1, 1, tzinfo=UTC))
    directory.append(later)
    directory.append(make_records(2))  # same file: oldest stays its first record
    assert directory.oldest == later[0]["ts"].timestamp()


def _run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_failed_append_leaves_the_file_readable(tmp_path):
    # A file-size limit makes the kernel refuse part of a write, as a full disk would.
    result = _run_python(
        """
        import resource, signal, sys
        from pathlib import Path
        from service.spill import SpillDirectory
        from tests.storage.records import make_records
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        directory = SpillDirectory(Path(sys.argv[1]))
        directory.append(make_records(3, seed=1))
        size = next(Path(sys.argv[1]).glob("spill-*")).stat().st_size
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 2000, resource.RLIM_INFINITY))
        try:
            directory.append(make_records(50, seed=2))
        except OSError as exc:
            print("refused", exc.errno)
        directory.append(make_records(1, seed=3))
        print("backlog", directory.backlog)
        """,
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "refused" in result.stdout
    assert "backlog 4" in result.stdout
    directory = SpillDirectory(tmp_path)
    directory.adopt_orphans()
    replayed, bad = replay_all(directory)
    assert bad == 0
    assert [r["request_id"] for r in replayed] == [
        *(r["request_id"] for r in make_records(3, seed=1)),
        make_records(1, seed=3)[0]["request_id"],
    ]


def test_files_of_a_killed_process_are_adopted_after_its_death(tmp_path):
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, time
                from pathlib import Path
                from service.spill import SpillDirectory
                from tests.storage.records import make_records
                SpillDirectory(Path(sys.argv[1])).append(make_records(8))
                print("spilled", flush=True)
                time.sleep(60)
                """
            ),
            str(tmp_path),
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "spilled"
        [path] = spill_files(tmp_path)
        assert path.name.startswith(f"spill-{child.pid}-")
        survivor = SpillDirectory(tmp_path)
        assert survivor.adopt_orphans() == 0  # the child is alive and holds its file
    finally:
        child.kill()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()

    assert survivor.adopt_orphans() == 8
    replayed, _ = replay_all(survivor)
    assert len(replayed) == 8


@pytest.mark.parametrize("size", [0, 1])
def test_empty_or_unterminated_files_do_not_stall_a_replay(tmp_path, size):
    path = tmp_path / "spill-7-small.jsonl"
    path.write_bytes(b"{" * size)
    directory = SpillDirectory(tmp_path)
    directory.adopt_orphans()
    assert directory.backlog == size
    replayed, bad = replay_all(directory)
    assert replayed == []
    assert bad == size
    directory.release_all()
    assert not path.exists()
