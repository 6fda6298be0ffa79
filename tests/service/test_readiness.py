from service.readiness import Readiness


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_failing_checks_are_named_and_retried_only_when_due():
    clock, calls = Clock(), {"store": 0}
    answers = iter(["connection refused", "connection refused", None])

    def store() -> str | None:
        calls["store"] += 1
        return next(answers)

    readiness = Readiness({"models": lambda: None, "store": store}, retry_interval_s=5, clock=clock)
    results = readiness.evaluate()
    assert [(r.name, r.ok) for r in results] == [("models", True), ("store", False)]
    assert readiness.failing()[0].detail == "connection refused"
    assert not readiness.ready
    clock.now += 1
    readiness.evaluate()
    assert calls["store"] == 1  # not due yet
    clock.now += 5
    readiness.evaluate()
    clock.now += 5
    readiness.evaluate()
    assert calls["store"] == 3
    assert readiness.ready


def test_passed_checks_are_not_rerun_and_readiness_latches():
    clock, runs = Clock(), []

    def models() -> None:
        runs.append("models")

    readiness = Readiness({"models": models}, retry_interval_s=0, clock=clock)
    for _ in range(3):
        clock.now += 1
        readiness.evaluate()
    assert runs == ["models"]
    assert readiness.ready


def test_a_check_that_raises_fails_with_its_reason():
    def sample() -> None:
        raise KeyError("sample")

    readiness = Readiness({"sample": sample})
    (result,) = readiness.evaluate()
    assert not result.ok
    assert result.detail == "KeyError: 'sample'"


def test_live_checks_are_rerun_once_ready_and_name_what_went_down():
    clock, answers = Clock(), iter([None, None, "model service risk does not answer", None])
    readiness = Readiness(
        {"models": lambda: None}, live={"model_service:risk": lambda: next(answers)}, clock=clock
    )
    assert readiness.watching
    readiness.evaluate()
    assert readiness.ready
    clock.now += 1
    readiness.evaluate()
    assert readiness.ready
    clock.now += 1
    readiness.evaluate()  # the model service went down: no longer ready, and named
    assert [r.name for r in readiness.failing()] == ["model_service:risk"]
    clock.now += 1
    readiness.evaluate()
    assert readiness.ready
    assert [r.name for r in readiness.results()] == ["models", "model_service:risk"]
