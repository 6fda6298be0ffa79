"""The worker's CPU time shared over its requests: charges follow the measured CPU."""

import random

import pytest

from service.busy_share import MAX_STEP, BusyShare


class FakeCpu:
    """A process CPU clock the test advances."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


def test_until_an_interval_is_measured_a_request_is_charged_its_own_work():
    share = BusyShare(FakeCpu())
    assert share.charge(0.002) == pytest.approx(0.002)


def test_startup_cpu_is_nobodys_and_each_interval_sets_the_next_rate():
    cpu = FakeCpu()
    share = BusyShare(cpu)
    cpu.seconds = 30.0  # imports and model loading
    share.start()
    for _ in range(10):
        share.charge(0.001)
    cpu.seconds += 0.05  # ten requests of 1 ms own work cost the process 50 ms
    share.close_interval()
    # The first interval was charged at 1.0 (10 ms); the next pays for what is owed: 40 ms
    # over the same work, within MAX_STEP of the interval's own rate of 5.
    assert share.rate == pytest.approx(min(0.040 / 0.010, 5 * MAX_STEP))
    charges = [share.charge(0.001) for _ in range(10)]
    cpu.seconds += 0.05
    share.close_interval()
    assert sum(charges) == pytest.approx(0.040)
    assert share.rate == pytest.approx(5.0)  # settled: 50 ms measured, 50 ms owed per interval
    assert share.charged_s == pytest.approx(0.050)
    assert share.measured_s == pytest.approx(0.100)  # one interval behind, not 30 s of startup


def test_under_steady_load_the_charges_add_up_to_the_measured_cpu():
    rng = random.Random(7)
    cpu = FakeCpu()
    share = BusyShare(cpu)
    for _ in range(600):  # ten minutes of one-second intervals
        work = 0.0
        for _ in range(rng.randint(150, 250)):  # requests finished in the interval
            own = rng.uniform(0.0001, 0.0004) * (40 if rng.random() < 0.05 else 1)
            share.charge(own)
            work += own
        cpu.seconds += work * rng.uniform(7.0, 9.0)  # what the process really spent
        share.close_interval()
    last_interval = 250 * 0.0004 * 3 * 9.0
    assert share.measured_s - share.charged_s < last_interval
    assert share.charged_s / share.measured_s > 0.99


def test_intervals_without_requests_are_upkeep_charged_to_nobody():
    cpu = FakeCpu()
    share = BusyShare(cpu)
    share.charge(0.001)
    cpu.seconds += 0.004
    share.close_interval()
    rate = share.rate
    for _ in range(5):
        cpu.seconds += 0.002  # scrapes and probes of an idle worker
        share.close_interval()
    assert share.upkeep_s == pytest.approx(0.010)
    assert share.rate == rate  # the next request is charged as the last busy interval's were
    assert share.charge(0.001) == pytest.approx(0.001 * rate)


def _steady(cpu: FakeCpu, share: BusyShare) -> None:
    for _ in range(3):
        share.charge(0.010)
        cpu.seconds += 0.050
        share.close_interval()
    assert share.rate == pytest.approx(5.0)


def test_when_load_falls_what_is_owed_is_not_all_charged_to_the_few_requests_left():
    cpu = FakeCpu()
    share = BusyShare(cpu)
    _steady(cpu, share)
    share.charge(0.001)  # one request where there were ten
    cpu.seconds += 0.005
    share.close_interval()
    # 50 ms are still owed for the busy interval before: over 1 ms of work that would be a
    # rate of 50; it is held to MAX_STEP x this interval's own rate, the rest paid later.
    assert share.rate == pytest.approx(5.0 * MAX_STEP)


def test_when_load_rises_the_rate_does_not_collapse():
    cpu = FakeCpu()
    share = BusyShare(cpu)
    _steady(cpu, share)
    share.charge(0.040)  # four times the work, charged at 5: more than was owed
    cpu.seconds += 0.200
    share.close_interval()
    assert share.rate == pytest.approx(5.0 / MAX_STEP)  # 1.25 without the bound
