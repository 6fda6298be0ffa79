"""Per-monitor locks across connections and processes."""

import subprocess
import sys
from pathlib import Path

from storage.locks import monitor_lock

ROOT = Path(__file__).resolve().parents[2]


def test_a_held_lock_is_refused_until_released(store_engine):
    with monitor_lock(store_engine, "cost") as first:
        with monitor_lock(store_engine, "cost") as second:
            assert first
            assert not second
        with monitor_lock(store_engine, "class_shift") as other:
            assert other
    with monitor_lock(store_engine, "cost") as again:
        assert again


def test_another_process_cannot_take_a_held_lock(store_engine, store_url):
    probe = (
        "import sys; from storage.locks import monitor_lock; "
        "from storage.engine import create_store_engine; "
        "e = create_store_engine(sys.argv[1]); "
        "ctx = monitor_lock(e, 'cost'); print(ctx.__enter__())"
    )
    command = [sys.executable, "-c", probe, store_url]
    with monitor_lock(store_engine, "cost") as held:
        assert held
        busy = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    free = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    assert busy.stdout.strip() == "False"
    assert free.stdout.strip() == "True"
