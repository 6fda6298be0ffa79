"""The readiness probe's query: the store answers and is migrated, or why not."""

import socket
import time

from storage.probe import StoreProbe


def test_store_probe_passes_on_a_migrated_store(store_url):
    probe = StoreProbe(store_url)
    try:
        assert probe() is None
    finally:
        probe.close()


def test_store_probe_names_an_unmigrated_store(tmp_path):
    probe = StoreProbe(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        problem = probe()
    finally:
        probe.close()
    assert problem is not None
    assert "predictions" in problem


def test_store_probe_fails_fast_when_the_store_is_unreachable():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    probe = StoreProbe(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test", timeout_s=1)
    start = time.monotonic()
    problem = probe()
    probe.close()
    assert problem is not None
    assert problem.startswith("store does not answer")
    assert time.monotonic() - start < 5
