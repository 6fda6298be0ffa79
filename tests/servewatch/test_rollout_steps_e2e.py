"""`servewatch rollout promote --auto` against the real service (2 workers, PostgreSQL): a ticket
classifier that learnt noise fails its gates and is aborted while traffic flows, no request
fails, every stored row names the version that answered it, and the baseline's golden set runs
on the live service after the abort; a risk scorer retrained on other accounts reaches 100 %;
the noise model let through by open gates is rolled back when its golden set fails on the live
service after the step."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from servewatch.cli import app
from service.faults import FAULT_HEADER
from service.models.build import build_all, build_model
from service.models.datasets import risk_dataset, ticket_dataset
from service.models.recipes import recipe
from service.models.registry import get_model, register_model
from service.models.risk_data import generate_accounts
from storage.engine import create_store_engine
from storage.rollouts import list_rollouts
from storage.schema import audit_log, predictions
from tests.conftest import POSTGRES_URL, require
from tests.service.conftest import KEYS, ServiceServer, auth, write_config
from tests.support.models import TICKETS, build_noise_ticket_model
from tests.support.scratch import scratch_schema

POLL_S = 0.5
GATE_LIMITS = (
    "max_error_rate_increase",
    "max_p99_latency_ratio",
    "max_schema_failure_rate",
    "max_class_shift_psi",
    "max_confidence_psi",
    "max_disagreement",
)
INTERVAL_S = 5


@pytest.fixture(scope="module")
def release_stack(tmp_path_factory, postgres_available):
    """The service routing both models to pinned baselines, with a candidate of each built."""
    require(postgres_available, "PostgreSQL is not reachable")
    home = tmp_path_factory.mktemp("rollout-e2e")
    models = home / "bentoml"
    build_all(home=models)
    risk = get_model("risk_scorer", home=models)
    versions = {
        "ticket": get_model(TICKETS, home=models).version,
        "risk": risk.version,
        "risk_copy": _copy_of(risk, models).version,
        "noise": build_noise_ticket_model(models).version,
        "retrained": build_model(
            replace(recipe("risk_scorer"), make_dataset=lambda: risk_dataset(seed=1818)),
            home=models,
        ).version,
    }
    with scratch_schema(POSTGRES_URL, prefix="e2e") as url:  # migrated, dropped at the end
        yield from _serving(home, models, versions, url)


def _copy_of(model, home):
    """`model` registered again under another version: the same answers to the same inputs."""
    return register_model(
        model.name,
        f"{model.version}-copy",
        model.onnx_path.read_bytes(),
        labels=model.labels,
        metadata=model.metadata,
        home=home,
    )


def _serving(home, models, versions: dict[str, str], url: str):
    """The service on `url` with the routes pinned to `versions`' baselines, and its configs."""
    routing = {
        "classify_ticket": {"default": {"model": TICKETS, "version": versions["ticket"]}},
        "classify_tickets": {"default": {"model": TICKETS, "version": versions["ticket"]}},
        "predict_risk": {"default": {"model": "risk_scorer", "version": versions["risk"]}},
    }
    gates = {"min_candidate_rows": 40, "replay_sample": 100}
    config = write_config(
        home / "servewatch.yaml",
        routing=routing,
        redaction={"store_raw_inputs": True},
        release={"gates": gates},
    )
    env = {"SERVEWATCH_ROLLOUT_POLL_INTERVAL_S": str(POLL_S), "SERVEWATCH_FAULT_INJECTION": "true"}
    server = ServiceServer(
        home=home / "run", config=config, models_home=models, database_url=url, workers=2, env=env
    )
    server.start()
    # The same service judged by gates that let anything through: only the golden set stops it.
    lenient = {name: None for name in GATE_LIMITS} | {"min_candidate_rows": 40}
    open_gates = write_config(
        home / "open-gates.yaml",
        routing=routing,
        redaction={"store_raw_inputs": True},
        release={"gates": lenient},
    )
    yield {
        "server": server, "url": url, "config": config, "open_gates": open_gates,
        "models": models, **versions,
    }  # fmt: skip
    server.stop()


class Traffic:
    """Requests on a thread until stopped: request id -> the version that answered."""

    def __init__(
        self,
        server: ServiceServer,
        route: str,
        payloads: list[dict],
        headers: dict[str, str] | None = None,
    ) -> None:
        self.answered: dict[str, str] = {}
        self.failures: list[str] = []
        self._headers = {**auth(), **(headers or {})}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(server, route, payloads))

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=20)

    def _run(self, server: ServiceServer, route: str, payloads: list[dict]) -> None:
        with server.client() as client:
            i = 0
            while not self._stop.is_set():
                answer = client.post(route, json=payloads[i % len(payloads)], headers=self._headers)
                if answer.status_code != 200:
                    self.failures.append(f"{answer.status_code} {answer.text[:200]}")
                else:
                    body = answer.json()
                    self.answered[body["request_id"]] = body["model_version"]
                i += 1
                time.sleep(0.01)

    def recent(self, n: int) -> set[str]:
        return set(list(self.answered.values())[-n:])


def _auto(stack, monkeypatch, candidate: str, config_key: str = "config", *skip: str):
    """Start a rollout (`skip`: `--skip-checks`, for a candidate that the checks before
    traffic would refuse, whose gates are under test), then promote it with --auto."""
    monkeypatch.setenv("SERVEWATCH_DATABASE_URL", stack["url"])
    monkeypatch.setenv("SERVEWATCH_MODELS_HOME", str(stack["models"]))
    monkeypatch.setenv("SERVEWATCH_ROLLOUT_POLL_INTERVAL_S", str(POLL_S))
    monkeypatch.setenv("USER", "tester")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("BENTOML_HOME", raising=False)
    runner = CliRunner()
    config = str(stack[config_key])
    started = runner.invoke(
        app,
        [
            "rollout",
            "start",
            "--candidate",
            candidate,
            "--steps",
            "50,100",
            "--config",
            config,
            *skip,
        ],
    )
    assert started.exit_code == 0, started.output
    return runner.invoke(
        app,
        [
            "rollout", "promote", "--auto", "--interval", str(INTERVAL_S), "--max-wait", "30",
            "--url", stack["server"].url, "--api-key", KEYS["acme"], "--config", config,
        ],
    )  # fmt: skip


def _until(condition, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.25)


def _stored(url: str, answered: dict[str, str]) -> dict[str, str]:
    engine = create_store_engine(url)
    try:
        statement = select(predictions.c.request_id, predictions.c.model_version).where(
            predictions.c.request_id.in_(list(answered))
        )
        with engine.connect() as connection:
            return {r.request_id: r.model_version for r in connection.execute(statement)}
    finally:
        engine.dispose()


def _events(url: str) -> list[dict]:
    engine = create_store_engine(url)
    try:
        kinds = ("rollout_step", "promotion", "abort", "rollback")
        statement = select(audit_log).where(audit_log.c.kind.in_(kinds)).order_by(audit_log.c.id)
        with engine.connect() as connection:
            return [dict(r) for r in connection.execute(statement).mappings()]
    finally:
        engine.dispose()


def test_a_candidate_that_learnt_noise_is_aborted_by_its_gates(release_stack, monkeypatch):
    server, url = release_stack["server"], release_stack["url"]
    texts = ticket_dataset(n=300, reference_rows=10).validation_inputs
    with Traffic(server, "/classify_ticket", [{"text": t} for t in texts]) as traffic:
        time.sleep(1)
        noise = f"{TICKETS}:{release_stack['noise']}"
        # Its golden set would refuse it before traffic: skipped, so that its gates judge it.
        result = _auto(release_stack, monkeypatch, noise, "config", "--skip-checks")
        assert result.exit_code == 1, result.output  # --auto ended without promoting
        assert "aborted" in result.output
        _until(lambda: traffic.recent(30) == {release_stack["ticket"]})
    assert traffic.failures == []
    assert release_stack["noise"] in traffic.answered.values()  # the canary did serve
    _until(lambda: _stored(url, traffic.answered) == traffic.answered)
    [rollout] = [r for r in list_rollouts_at(url) if r.candidate_version == release_stack["noise"]]
    assert rollout.state == "aborted"
    events = [e for e in _events(url) if e["details"]["rollout_id"] == rollout.id]
    abort = next(e for e in events if e["kind"] == "abort")
    assert abort["details"]["auto"] is True
    failed = {g["gate"] for g in abort["details"]["gates"]["gates"] if g["verdict"] == "fail"}
    # Shuffled labels keep the class priors: its class shares barely move, its confidence and
    # its answers on the same inputs do.
    assert {"max_confidence_psi", "max_disagreement"} <= failed
    golden = [e for e in events if e["decision"] == "check"]
    assert [e["details"]["after"] for e in golden] == ["abort"]
    assert golden[0]["details"]["golden"]["passed"] is True


def test_a_good_candidate_is_promoted_to_100(release_stack, monkeypatch):
    server, url = release_stack["server"], release_stack["url"]
    accounts = generate_accounts(200, 31)
    with Traffic(server, "/predict_risk", [{"features": a.features} for a in accounts]) as traffic:
        time.sleep(1)
        result = _auto(release_stack, monkeypatch, f"risk_scorer:{release_stack['retrained']}")
        assert result.exit_code == 0, result.output
        _until(lambda: traffic.recent(30) == {release_stack["retrained"]})
    assert traffic.failures == []
    _until(lambda: _stored(url, traffic.answered) == traffic.answered)
    [rollout] = [
        r for r in list_rollouts_at(url) if r.candidate_version == release_stack["retrained"]
    ]
    assert (rollout.state, rollout.weight) == ("promoted", 100.0)
    events = [e for e in _events(url) if e["details"]["rollout_id"] == rollout.id]
    promotion = next(e for e in events if e["kind"] == "promotion")
    assert promotion["details"]["gates"]["verdict"] == "pass"
    golden = [e["details"]["golden"]["passed"] for e in events if e["decision"] == "check"]
    assert golden == [True]


def test_a_candidate_made_slow_is_aborted_by_its_latency_gate(release_stack, monkeypatch):
    server, url = release_stack["server"], release_stack["url"]
    # The baseline's own artifact under another version: its answers can differ from the
    # baseline's only by which inputs the split sent it, so only its latency can fail it.
    copy = release_stack["risk_copy"]
    accounts = generate_accounts(200, 37)
    slow = {FAULT_HEADER: f"latency=60@{copy}"}  # only the candidate's answers
    payloads = [{"features": a.features} for a in accounts]
    with Traffic(server, "/predict_risk", payloads, slow) as traffic:
        time.sleep(1)
        result = _auto(release_stack, monkeypatch, f"risk_scorer:{copy}")
        assert result.exit_code == 1, result.output
        _until(lambda: traffic.recent(30) == {release_stack["risk"]})
    assert traffic.failures == []
    assert copy in traffic.answered.values()
    _until(lambda: _stored(url, traffic.answered) == traffic.answered)
    [rollout] = [r for r in list_rollouts_at(url) if r.candidate_version == copy]
    assert rollout.state == "aborted"
    events = [e for e in _events(url) if e["details"]["rollout_id"] == rollout.id]
    abort = next(e for e in events if e["kind"] == "abort")
    failed = {g["gate"] for g in abort["details"]["gates"]["gates"] if g["verdict"] == "fail"}
    assert failed == {"max_p99_latency_ratio"}  # as good as its baseline, only slower


def list_rollouts_at(url: str):
    engine = create_store_engine(url)
    try:
        return list_rollouts(engine)
    finally:
        engine.dispose()


def test_a_candidate_whose_golden_set_fails_on_the_live_service_is_rolled_back(
    release_stack, monkeypatch
):
    server, url = release_stack["server"], release_stack["url"]
    texts = ticket_dataset(n=300, reference_rows=10).validation_inputs
    noise = release_stack["noise"]
    with Traffic(server, "/classify_ticket", [{"text": t} for t in texts]) as traffic:
        time.sleep(1)
        result = _auto(
            release_stack, monkeypatch, f"{TICKETS}:{noise}", "open_gates", "--skip-checks"
        )
        assert result.exit_code == 1, result.output
        _until(lambda: traffic.recent(30) == {release_stack["ticket"]})
    assert traffic.failures == []
    rollouts = [r for r in list_rollouts_at(url) if r.candidate_version == noise]
    newest = rollouts[0]
    # The open gates promoted it to 100 %; its golden set then failed and it was undone.
    assert newest.state == "rolled_back"
    events = [e for e in _events(url) if e["details"]["rollout_id"] == newest.id]
    assert [(e["kind"], e["decision"]) for e in events] == [
        ("rollout_step", "start"),
        ("promotion", "promote"),
        ("rollout_step", "check"),
        ("rollback", "rollback"),
        ("rollout_step", "check"),
    ]
    after_step, after_rollback = (e["details"] for e in events if e["decision"] == "check")
    assert after_step["after"] == "step"
    assert after_step["golden"]["passed"] is False
    assert after_step["problems"]
    assert events[3]["details"]["reason"] == "golden set failed after the step"
    assert (after_rollback["after"], after_rollback["golden"]["passed"]) == ("abort", True)
