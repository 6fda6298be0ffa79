"""The worker's rollout watch: a real runtime with two registered risk_scorer versions picks up
rollout changes from the store when polled (driven by hand here), and keeps its last state
when the store does not answer."""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import yaml
from prometheus_client import CollectorRegistry
from sqlalchemy import select, text

from core.config import load_settings
from service.instrumentation import RequestTrace
from service.models.build import build_all, build_model
from service.models.datasets import risk_dataset
from service.models.recipes import recipe
from service.models.registry import get_model
from service.worker import ServiceRuntime
from storage.engine import create_store_engine
from storage.migrate import upgrade
from storage.rollouts import RolloutPlan, abort_rollout, promote_rollout, start_rollout
from storage.schema import predictions
from tests.service.conftest import ServiceServer, auth, write_config
from tests.service.test_service_http import risk_features

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
ENDPOINT = "predict_risk"


@pytest.fixture(scope="module")
def risk_versions(tmp_path_factory) -> dict[str, object]:
    """A model store with two versions of the risk scorer (the second from other accounts)."""
    home = tmp_path_factory.mktemp("rollout-models") / "bentoml"
    first = build_model(recipe("risk_scorer"), home=home)
    other = replace(recipe("risk_scorer"), make_dataset=lambda: risk_dataset(seed=1818))
    second = build_model(other, home=home)
    assert first.version != second.version
    return {"home": home, "baseline": first.version, "candidate": second.version}


@pytest.fixture
def runtime(risk_versions, store_url, tmp_path, monkeypatch):
    for name in ("SERVEWATCH_DATABASE_URL", "SERVEWATCH_CONFIG_FILE", "BENTOML_HOME"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "servewatch.yaml"
    route = {"default": {"model": "risk_scorer", "version": risk_versions["baseline"]}}
    config.write_text(yaml.safe_dump({"routing": {ENDPOINT: route}}))
    settings = load_settings(
        home=tmp_path / "home",
        models_home=risk_versions["home"],
        config_file=config,
        database_url=store_url,
        use_cuda=False,
        prediction_log_enabled=False,
    )
    runtime = ServiceRuntime(settings, registry=CollectorRegistry())
    runtime.readiness.evaluate()  # loads the baseline; the watch is polled by hand
    yield runtime
    asyncio.run(runtime.close())


def _plan(versions, **fields) -> RolloutPlan:
    return RolloutPlan(
        endpoints=(ENDPOINT,),
        candidate_model="risk_scorer",
        candidate_version=versions["candidate"],
        baseline_model="risk_scorer",
        baseline_version=versions["baseline"],
        **fields,
    )


def _answering(runtime: ServiceRuntime, n: int, tenant: str = "acme") -> list[str]:
    rng = random.Random(5)
    versions = []
    for _ in range(n):
        trace = RequestTrace(
            request_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            endpoint=ENDPOINT,
            received_at=T0,
            started=time.perf_counter(),
            tenant=tenant,
        )
        runtime.resolve(trace)
        versions.append(trace.model_version)
    return versions


def _sample(runtime: ServiceRuntime, labels: dict[str, str]) -> float | None:
    gauge = runtime.instrumentation.metrics["servewatch_rollout_weight"]
    for metric in gauge.collect():
        for sample in metric.samples:
            if sample.labels == labels:
                return float(sample.value)
    return None


def test_a_poll_applies_start_step_and_abort(runtime, risk_versions, store_url):
    baseline, candidate = risk_versions["baseline"], risk_versions["candidate"]
    assert runtime.rollouts.poll()
    assert set(_answering(runtime, 50)) == {baseline}
    engine = create_store_engine(store_url)
    try:
        rollout = start_rollout(
            engine, _plan(risk_versions, steps=(25, 50, 100)), actor="t", now=T0
        )
        assert set(_answering(runtime, 50)) == {baseline}  # nothing changes before a poll
        assert runtime.rollouts.poll()
        n = 4000
        share = _answering(runtime, n).count(candidate) / n
        assert abs(share - 0.25) < 4 * math.sqrt(0.25 * 0.75 / n)
        assert (
            _sample_of(runtime, candidate, "candidate"),
            _sample_of(runtime, baseline, "baseline"),
        ) == (25.0, 75.0)
        promote_rollout(engine, rollout.id, actor="t", now=T0)
        runtime.rollouts.poll()
        assert _sample_of(runtime, candidate, "candidate") == 50.0
        share = _answering(runtime, n).count(candidate) / n
        assert abs(share - 0.5) < 4 * math.sqrt(0.25 / n)
        abort_rollout(engine, rollout.id, actor="t", now=T0)
        runtime.rollouts.poll()
        assert set(_answering(runtime, 50)) == {baseline}
        assert _sample_of(runtime, candidate, "candidate") == 0.0
    finally:
        engine.dispose()


def _sample_of(runtime: ServiceRuntime, version: str, role: str) -> float | None:
    labels = {"endpoint": ENDPOINT, "model_name": "risk_scorer", "model_version": version}
    return _sample(runtime, {**labels, "role": role})


def test_an_unknown_candidate_never_serves(runtime, risk_versions, store_url):
    engine = create_store_engine(store_url)
    try:
        plan = replace(_plan(risk_versions, steps=(100,)), candidate_version="v404")
        start_rollout(engine, plan, actor="t", now=T0)
    finally:
        engine.dispose()
    assert runtime.rollouts.poll()
    assert set(_answering(runtime, 50)) == {risk_versions["baseline"]}
    assert runtime.router.splits == {}


def test_a_store_outage_keeps_the_last_state(runtime, risk_versions, store_url):
    engine = create_store_engine(store_url)
    try:
        start_rollout(engine, _plan(risk_versions, steps=(100,)), actor="t", now=T0)
        assert runtime.rollouts.poll()
        with engine.begin() as connection:  # the next read fails: no such table
            connection.execute(text("DROP TABLE rollouts"))
    finally:
        engine.dispose()
    assert not runtime.rollouts.poll()
    assert set(_answering(runtime, 50)) == {risk_versions["candidate"]}


# -- over HTTP -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def canary_server(tmp_path_factory):
    """The service (2 workers, SQLite) routing predict_risk to one of two risk versions."""
    home = tmp_path_factory.mktemp("canary-service")
    models = home / "bentoml"
    build_all(home=models)
    baseline = get_model("risk_scorer", home=models).version
    other = replace(recipe("risk_scorer"), make_dataset=lambda: risk_dataset(seed=1818))
    candidate = build_model(other, home=models).version
    url = f"sqlite:///{home / 'store.db'}"
    upgrade(url)
    route = {"default": {"model": "risk_scorer", "version": baseline}}
    config = write_config(home / "servewatch.yaml", routing={ENDPOINT: route})
    server = ServiceServer(
        home=home / "run", config=config, models_home=models, database_url=url, workers=2
    )
    server.start()
    yield {"server": server, "url": url, "baseline": baseline, "candidate": candidate}
    server.stop()


def _answers(server: ServiceServer, n: int) -> dict[str, str]:
    """request id -> the model version that answered, for `n` requests."""
    features = risk_features(server)
    answered = {}
    with server.client() as client:
        for _ in range(n):
            answer = client.post(f"/{ENDPOINT}", json={"features": features}, headers=auth())
            assert answer.status_code == 200, answer.text
            body = answer.json()
            answered[body["request_id"]] = body["model_version"]
    return answered


def _until(condition, timeout_s: float = 15.0) -> float:
    """Seconds until `condition()` holds (fails after `timeout_s`)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, "not within the time allowed"
        time.sleep(0.25)
    return time.monotonic() - started


def test_workers_pick_up_a_rollout_and_its_abort_within_seconds(canary_server):
    server, baseline, candidate = (canary_server[k] for k in ("server", "baseline", "candidate"))
    assert set(_answers(server, 20).values()) == {baseline}
    engine = create_store_engine(canary_server["url"])
    try:
        plan = RolloutPlan(
            endpoints=(ENDPOINT,),
            candidate_model="risk_scorer",
            candidate_version=candidate,
            baseline_model="risk_scorer",
            baseline_version=baseline,
            steps=(50, 100),
        )
        rollout = start_rollout(engine, plan, actor="t", now=T0)
        # Every worker applies it within the time allowed: until both do, the candidate's share
        # of 200 answers stays near 25 %, below the binomial bound around 50 %.
        bound = 4 * math.sqrt(0.25 / 200)
        answered: dict[str, str] = {}

        def candidate_share_is_half() -> bool:
            answered.clear()
            answered.update(_answers(server, 200))
            share = list(answered.values()).count(candidate) / len(answered)
            return 0.5 - bound < share < 0.5 + bound

        _until(candidate_share_is_half)
        _until(lambda: _stored_versions(engine, answered) == answered)
        abort_rollout(engine, rollout.id, actor="t", now=T0)
        _until(lambda: set(_answers(server, 40).values()) == {baseline})
    finally:
        engine.dispose()


def _stored_versions(engine, answered: dict[str, str]) -> dict[str, str]:
    """request id -> model version of the stored prediction rows of `answered`."""
    statement = select(predictions.c.request_id, predictions.c.model_version).where(
        predictions.c.request_id.in_(list(answered))
    )
    with engine.connect() as connection:
        return {row.request_id: row.model_version for row in connection.execute(statement)}
