"""The worker's garbage collector: what lives as long as the worker is frozen out of it, and the
youngest generation is collected less often than Python's default.

Measured in a live worker (docs/benchmarks.md, session 12): at Python's threshold of 700
allocations the youngest generation was collected every ~5 requests, ~0.2 ms each, ~50 µs a
request in all; the objects alive at each pass are mostly the same requests in flight, so a pass
every 20,000 allocations costs about as much as one every 700 did.
"""

from __future__ import annotations

import gc


def settle_collector(young_threshold: int) -> None:
    """Freeze everything alive now (the framework, the models, the schemas: they live as long as
    the worker, and the collector's full passes over them showed up as latency spikes), and
    collect the youngest generation every `young_threshold` allocations."""
    gc.freeze()
    gc.set_threshold(young_threshold, *gc.get_threshold()[1:])
