"""A process that called die_with_parent stops when its parent is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.parent_watch import ARBITER_PID_ENV, expected_parent

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# The parent starts the child, prints the child's pid and waits to be killed.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(child.pid, flush=True)
time.sleep(60)
"""
CHILD = """
import time
from service.parent_watch import die_with_parent
die_with_parent(poll_s=0.1)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of a re-parented child is reaped by init; until then it counts as gone.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_child_stops_when_its_parent_is_killed():
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD], stdout=subprocess.PIPE, text=True, env=env
    )
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        time.sleep(1.0)  # the child is importing and arming the watch
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        parent.kill()
        if child and _alive(child):
            os.kill(child, signal.SIGKILL)


def test_the_watch_thread_stops_the_process_once_re_parented(monkeypatch):
    from service import parent_watch

    parents = iter([100, 100, 1])
    monkeypatch.setattr(parent_watch.os, "getppid", lambda: next(parents, 1))
    monkeypatch.setattr(parent_watch, "_ask_the_kernel", lambda signum: None)
    stopped: list[int] = []
    watcher = parent_watch.die_with_parent(poll_s=0.01, grace_s=0.01, stop=stopped.append)
    watcher.join(timeout=5)
    assert stopped == [signal.SIGTERM, signal.SIGKILL]  # graceful first, then for good


def _dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_that_starts_after_its_arbiter_died_stops():
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        ARBITER_PID_ENV: str(_dead_pid()),  # it died while this worker was still importing
    }
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=env)
    try:
        assert child.wait(timeout=20) == -signal.SIGTERM
    finally:
        child.kill()


def test_the_named_arbiter_counts_only_when_it_is_the_parent_or_gone(monkeypatch):
    monkeypatch.setenv(ARBITER_PID_ENV, str(os.getppid()))
    assert expected_parent() == os.getppid()
    monkeypatch.setenv(ARBITER_PID_ENV, str(os.getpid()))  # alive, but not our parent
    assert expected_parent() == os.getppid()
    dead = _dead_pid()
    monkeypatch.setenv(ARBITER_PID_ENV, str(dead))
    assert expected_parent() == dead
    monkeypatch.delenv(ARBITER_PID_ENV)
    assert expected_parent() == os.getppid()
