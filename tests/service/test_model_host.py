"""A model service's models (split topology): loaded by route, run in batches, answers that
carry each item's batch size and compute share, refusals as error codes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from service.model_host import ModelHost
from service.runtime import CPU_PROVIDER, load_model
from tests.service.conftest import write_config

TEXTS = ["I was charged twice for my subscription", "The app crashes on start", "Hello"]


def _host(
    tmp_path: Path, models_home: Path, endpoints: tuple[str, ...], **config: Any
) -> ModelHost:
    settings = Settings(
        home=tmp_path,
        models_home=models_home,
        config_file=write_config(tmp_path / "servewatch.yaml", **config),
        use_cuda=False,
        metrics_enabled=False,
    )
    return ModelHost(settings, endpoints, registry=None)


def test_it_loads_the_versions_its_endpoints_route_to(
    tmp_path, built_models_home, registered_models
):
    host = _host(tmp_path, built_models_home, ("classify_ticket", "classify_tickets"))
    states = host.load_routes()
    ticket = registered_models["ticket_classifier"]
    assert [(s.name, s.version, s.provider, s.problem) for s in states] == [
        ("ticket_classifier", ticket.version, CPU_PROVIDER, None)
    ]
    assert host.describe() == states
    assert host.load("ticket_classifier", ticket.version) == states[0]  # loaded once


def test_answers_are_the_models_with_batch_size_and_compute_share(
    tmp_path, built_models_home, registered_models
):
    ticket = registered_models["ticket_classifier"]
    host = _host(tmp_path, built_models_home, ("classify_tickets",))
    host.load_routes()
    answer = asyncio.run(host.infer("classify_tickets", ticket.name, ticket.version, TEXTS))
    local = load_model(ticket, use_cuda=False, intra_op_threads=1, inter_op_threads=1)
    expected = local.predict(TEXTS).items
    assert len(answer["items"]) == len(TEXTS)
    for item, result in zip(answer["items"], expected, strict=True):
        predicted_class, confidence, probabilities, failure, batch_size, compute_seconds = item
        assert (predicted_class, failure) == (result.predicted_class, None)
        assert confidence == pytest.approx(result.confidence)
        assert probabilities == pytest.approx(result.probabilities)
        assert batch_size == len(TEXTS)  # one bulk request, one batch
        assert compute_seconds > 0
    assert len({item[5] for item in answer["items"]}) == 1  # the batch's time, shared evenly


def test_an_unknown_version_is_a_model_error(tmp_path, built_models_home):
    host = _host(tmp_path, built_models_home, ("classify_ticket",))
    answer = asyncio.run(host.infer("classify_ticket", "ticket_classifier", "0" * 16, ["x"]))
    assert answer["error"] == "model_error"
    assert "0000" in answer["message"]


def test_a_full_queue_is_overloaded(tmp_path, built_models_home, registered_models):
    ticket = registered_models["ticket_classifier"]
    host = _host(
        tmp_path,
        built_models_home,
        ("classify_tickets",),
        batching={"classify_tickets": {"max_batch_size": 1, "max_latency_ms": 1}},
    )
    values = [f"ticket {i}" for i in range(65)]  # the queue holds 64 batches of one
    answer = asyncio.run(host.infer("classify_tickets", ticket.name, ticket.version, values))
    assert answer["error"] == "overloaded"
