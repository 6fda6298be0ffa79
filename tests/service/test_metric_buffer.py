import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from service.metric_buffer import MetricBuffer

BUCKETS = (0.01, 0.1, 1.0)
OBSERVED = (0.0, 0.01, 0.010001, 0.1, 0.5, 1.0, 7.0, math.inf, -3.0, math.nan)


Key = tuple[str, tuple[tuple[str, str], ...]]


def sample_values(registry: CollectorRegistry) -> dict[Key, float]:
    """Every sample but the creation timestamps, by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for m in registry.collect()
        for s in m.samples
        if not s.name.endswith("_created")
    }


def _metrics(registry: CollectorRegistry) -> tuple[Histogram, Counter, Gauge]:
    return (
        Histogram("latency_seconds", "l", ["route"], buckets=BUCKETS, registry=registry),
        Counter("hits_total", "h", ["route"], registry=registry),
        Gauge("in_flight", "f", ["route"], registry=registry),
    )


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a
    )


def test_flushed_updates_equal_the_same_updates_made_directly():
    direct, buffered = CollectorRegistry(), CollectorRegistry()
    d_latency, d_hits, d_flight = _metrics(direct)
    b_latency, b_hits, b_flight = _metrics(buffered)
    buffer = MetricBuffer()
    latency = buffer.histogram(b_latency.labels("a"))
    hits = buffer.counter(b_hits.labels("a"))
    flight = buffer.counter(b_flight.labels("a"))
    for value in OBSERVED:
        d_latency.labels("a").observe(value)
        latency.observe(value)
        d_hits.labels("a").inc(2.5)
        hits.inc(2.5)
        d_flight.labels("a").inc()
        flight.inc()
    d_flight.labels("a").dec(3)
    flight.dec(3)
    buffer.flush()
    assert _same(sample_values(buffered), sample_values(direct))


def test_nothing_is_written_until_flush():
    registry = CollectorRegistry()
    latency, hits, _ = _metrics(registry)
    buffer = MetricBuffer()
    buffer.histogram(latency.labels("a")).observe(0.05)
    buffer.counter(hits.labels("a")).inc()
    assert registry.get_sample_value("hits_total", {"route": "a"}) == 0
    assert registry.get_sample_value("latency_seconds_count", {"route": "a"}) == 0
    assert buffer.pending == 2
    buffer.flush()
    assert registry.get_sample_value("hits_total", {"route": "a"}) == 1
    assert registry.get_sample_value("latency_seconds_bucket", {"route": "a", "le": "0.01"}) == 0
    assert registry.get_sample_value("latency_seconds_bucket", {"route": "a", "le": "0.1"}) == 1
    assert buffer.pending == 0


def test_a_series_is_written_once_per_flush_and_again_after_new_updates():
    class Recording:
        def __init__(self) -> None:
            self.writes: list[float] = []

        def inc(self, amount: float) -> None:
            self.writes.append(amount)

    child = Recording()
    buffer = MetricBuffer()
    counter = buffer.counter(child)
    for _ in range(1000):
        counter.inc()
    buffer.flush()
    buffer.flush()
    counter.inc(4)
    buffer.flush()
    assert child.writes == [1000.0, 4.0]


def test_gauge_increments_that_cancel_out_write_nothing():
    class Refusing:
        def inc(self, amount: float) -> None:
            raise AssertionError(f"wrote {amount}")

    buffer = MetricBuffer()
    gauge = buffer.counter(Refusing())
    gauge.inc()
    gauge.dec()
    buffer.flush()
    assert buffer.pending == 0
