"""A model-service worker loads the rollout candidates of its endpoints ahead, from the rollouts
table the gateway's watch reads: no worker loads one on its first request. A real model host
with two registered risk_scorer versions, on both stores."""

from __future__ import annotations

import asyncio
import time
from functools import partial
from pathlib import Path
from typing import Any

from core.config import Settings
from service.candidate_preload import CandidatePreload
from service.model_host import ModelHost
from storage.engine import create_small_engine, create_store_engine
from storage.rollouts import abort_rollout, rollouts_in_force, start_rollout
from tests.service.conftest import write_config
from tests.service.test_rollout_watch import ENDPOINT, T0, _plan, risk_versions  # noqa: F401


def _host(tmp_path: Path, versions: dict[str, Any]) -> ModelHost:
    route = {"default": {"model": "risk_scorer", "version": versions["baseline"]}}
    settings = Settings(
        home=tmp_path,
        models_home=versions["home"],
        config_file=write_config(tmp_path / "servewatch.yaml", routing={ENDPOINT: route}),
        use_cuda=False,
        metrics_enabled=False,
    )
    host = ModelHost(settings, (ENDPOINT,), registry=None)
    host.load_routes()
    return host


def _servable(host: ModelHost) -> set[tuple[str, str]]:
    return {(s.name, s.version) for s in host.describe() if s.servable}


def test_each_worker_loads_its_endpoints_candidates_when_it_polls(
    tmp_path,
    risk_versions,  # noqa: F811
    store_url,
):
    baseline, candidate = risk_versions["baseline"], risk_versions["candidate"]
    host = _host(tmp_path, risk_versions)
    engine = create_store_engine(store_url)
    try:
        read = partial(rollouts_in_force, engine)
        load = lambda name, version: host.load(name, version).servable  # noqa: E731
        preload = CandidatePreload(read, (ENDPOINT,), load=load)
        other = CandidatePreload(read, ("classify_ticket", "classify_tickets"), load=load)
        assert preload.poll() == []
        rollout = start_rollout(engine, _plan(risk_versions, steps=(25, 100)), actor="t", now=T0)
        assert other.poll() == []  # another model service's endpoints: not its candidate
        assert _servable(host) == {("risk_scorer", baseline)}
        assert preload.poll() == [("risk_scorer", candidate)]
        assert _servable(host) == {("risk_scorer", baseline), ("risk_scorer", candidate)}
        abort_rollout(engine, rollout.id, actor="t", now=T0)
        assert preload.poll() == []
    finally:
        engine.dispose()
        asyncio.run(host.close())


def test_the_polls_run_on_their_own_and_survive_a_store_that_does_not_answer(
    tmp_path,
    risk_versions,  # noqa: F811
    store_url,
):
    candidate = risk_versions["candidate"]
    host = _host(tmp_path, risk_versions)
    down = create_small_engine(f"sqlite:///{tmp_path / 'missing' / 'store.db'}")
    load = lambda name, version: host.load(name, version).servable  # noqa: E731
    assert CandidatePreload(partial(rollouts_in_force, down), (ENDPOINT,), load=load).poll() == []
    engine = create_store_engine(store_url)
    preload = CandidatePreload(
        partial(rollouts_in_force, engine), (ENDPOINT,), load=load, interval_s=0.05
    )
    try:
        preload.start()
        start_rollout(engine, _plan(risk_versions, steps=(25, 100)), actor="t", now=T0)
        deadline = time.monotonic() + 10
        while ("risk_scorer", candidate) not in _servable(host) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ("risk_scorer", candidate) in _servable(host)
    finally:
        preload.close()
        engine.dispose()
        down.dispose()
        asyncio.run(host.close())
