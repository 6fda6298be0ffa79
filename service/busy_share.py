"""The worker's whole busy time, shared out over the requests it served.

What a request costs its worker is more than its inference: HTTP parsing, validation, routing,
the answer's serialisation, the metrics, the prediction log's journal write and its writer
thread's COPY all run in the worker process too. Most of it runs in code the request does not
own (uvicorn, BentoML, the writer thread), interleaved with other requests, so it cannot be
timed per request. It can be measured per interval: the process's CPU seconds (every thread)
are read once an interval and shared over the requests finished in it, in proportion to each
one's own measured work (its synchronous time on the event loop plus its share of batched
inference; see `RequestTrace.work_until`).

The share is set before the interval's CPU is known (a request's row is written before its
answer goes out), so each interval is charged at the rate of the ones before: the last busy
interval's CPU per unit of work, corrected by what was measured and not charged yet, within
a factor of `MAX_STEP` of it so that one odd interval cannot make a charge zero or huge. Under
steady load the charges follow the measured CPU one interval behind, and sum to it. An
interval in which no request finished is the worker's upkeep (probes, scrapes, the writer's
ticks): its CPU is counted in `upkeep_s` and charged to nobody, so it shows as idle capacity.
"""

from __future__ import annotations

import time
from collections.abc import Callable

INTERVAL_S = 1.0  # how often the process CPU is read (ServiceRuntime's timer)
MAX_STEP = 2.0  # the charged rate stays within this factor of the last interval's own rate


class BusyShare:
    """Charges each finished request its share of the worker process's measured CPU time."""

    def __init__(self, cpu_clock: Callable[[], float] = time.process_time) -> None:
        self._cpu_clock = cpu_clock
        self._last_cpu = cpu_clock()
        # CPU seconds per second of a request's own work. A request's own work is part of what
        # the process spent on it, so 1.0 is a lower bound until the first interval is measured.
        self.rate = 1.0
        self._work = 0.0  # own work of the requests charged in the open interval
        self._owed = 0.0  # CPU of busy intervals, less what was charged for it
        self.charged_s = 0.0  # all charged so far
        self.measured_s = 0.0  # CPU of the intervals in which requests finished
        self.upkeep_s = 0.0  # CPU of the intervals without any: charged to nobody

    def start(self) -> None:
        """Measure from now (what the worker spent starting up is nobody's request)."""
        self._last_cpu = self._cpu_clock()
        self._work = 0.0

    def charge(self, work_s: float) -> float:
        """CPU seconds to attribute to a request whose own measured work was `work_s`."""
        self._work += work_s
        share = work_s * self.rate
        self._owed -= share
        self.charged_s += share
        return share

    def close_interval(self) -> None:
        """Read the process CPU and set the rate the next interval's requests are charged at."""
        cpu = self._cpu_clock()
        used, self._last_cpu = cpu - self._last_cpu, cpu
        work, self._work = self._work, 0.0
        if work <= 0.0:
            self.upkeep_s += used
            return
        self.measured_s += used
        self._owed += used
        own_rate = used / work
        self.rate = min(max(self._owed / work, own_rate / MAX_STEP), own_rate * MAX_STEP)
