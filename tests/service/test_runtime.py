"""ONNX Runtime sessions on the built models, the output check on a broken model, the batcher."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from service.runtime import (
    CPU_PROVIDER,
    BatchResult,
    InputMismatch,
    LoadedModel,
    MicroBatcher,
    QueueFull,
    load_model,
)

TEXTS = [
    "I was charged twice for my subscription",
    "The app crashes on start",
    "Please close my account",
    "My parcel never arrived",
    "Hello there",
]


def _load(registered: Any) -> LoadedModel:
    return load_model(registered, use_cuda=False, intra_op_threads=1, inter_op_threads=1)


@pytest.fixture(scope="module")
def ticket_model(registered_models) -> LoadedModel:
    return _load(registered_models["ticket_classifier"])


@pytest.fixture(scope="module")
def risk_model(registered_models) -> LoadedModel:
    return _load(registered_models["risk_scorer"])


def test_sessions_run_on_the_cpu_provider_with_their_metadata(ticket_model, risk_model):
    for model in (ticket_model, risk_model):
        assert model.provider == CPU_PROVIDER
        assert model.resource_class == "cpu"
        assert model.sample_check() is None
    assert ticket_model.input_kind == "text"
    assert risk_model.input_kind == "tabular"
    assert risk_model.features
    assert not ticket_model.features


def test_a_batch_gives_the_same_answers_as_single_items(ticket_model):
    batch = ticket_model.predict([ticket_model.prepare(t) for t in TEXTS])
    assert batch.size == len(TEXTS)
    assert batch.seconds > 0
    for text, item in zip(TEXTS, batch.items, strict=True):
        (single,) = ticket_model.predict([ticket_model.prepare(text)]).items
        assert item.failure is None
        assert item.predicted_class == single.predicted_class
        assert item.confidence == pytest.approx(single.confidence, abs=1e-6)
        assert sum(item.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
        assert item.confidence == max(item.probabilities.values())


def test_tabular_inputs_follow_the_model_feature_order(risk_model):
    features = {name: float(i) for i, name in enumerate(risk_model.features)}
    assert risk_model.prepare(dict(reversed(features.items()))) == list(features.values())
    incomplete = dict(list(features.items())[1:]) | {"shoe_size": 42.0}
    with pytest.raises(InputMismatch) as excinfo:
        risk_model.prepare(incomplete)
    message = str(excinfo.value)
    assert f"missing features: {risk_model.features[0]}" in message
    assert "unknown features: shoe_size" in message


def _halved_probabilities(registered: Any, directory: Path) -> Any:
    """A copy of `registered` whose ONNX graph halves its probabilities (a broken model)."""
    graph_model = onnx.load(str(registered.onnx_path))
    output_name = registered.metadata["onnx"]["probabilities_output"]
    graph = graph_model.graph
    for node in graph.node:
        node.output[:] = [f"{o}_raw" if o == output_name else o for o in node.output]
    graph.initializer.append(numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"))
    graph.node.append(helper.make_node("Mul", [f"{output_name}_raw", "half"], [output_name]))
    path = directory / "model.onnx"
    onnx.save(graph_model, str(path))
    return _Relocated(registered, path)


@dataclasses.dataclass(frozen=True)
class _Relocated:
    """A registered model whose ONNX file lives elsewhere (the broken copy)."""

    base: Any
    onnx_path: Path

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)


def test_outputs_that_break_the_schema_are_flagged_per_item(registered_models, tmp_path):
    broken = _load(_halved_probabilities(registered_models["ticket_classifier"], tmp_path))
    result = broken.predict([broken.prepare(t) for t in TEXTS[:3]])
    assert [item.failure for item in result.items] == ["not_normalized"] * 3
    assert all(item.predicted_class is None for item in result.items)
    problem = broken.sample_check()
    assert problem is not None
    assert problem.startswith("sample output broke the output schema")


class Recorder:
    """The batcher's observer: what it reported, in order."""

    def __init__(self) -> None:
        self.depth = 0
        self.peak = 0
        self.batches: list[int] = []

    def queued(self, model: Any, delta: int) -> None:
        self.depth += delta
        self.peak = max(self.peak, self.depth)

    def batch_done(self, model: Any, result: BatchResult) -> None:
        self.batches.append(result.size)


def _batcher(model: LoadedModel, recorder: Recorder, **overrides: Any) -> MicroBatcher:
    options = {"max_batch_size": 4, "max_latency_s": 0.05, "max_queue": 64} | overrides
    return MicroBatcher(
        model, executor=ThreadPoolExecutor(max_workers=1), observer=recorder, **options
    )


def test_concurrent_items_share_batches_within_the_size_limit(ticket_model):
    recorder = Recorder()

    async def scenario() -> list[Any]:
        batcher = _batcher(ticket_model, recorder)
        texts = [TEXTS[i % len(TEXTS)] for i in range(20)]
        results = await asyncio.gather(*(batcher.infer([t]) for t in texts))
        await batcher.close()
        return [r[0] for r in results]

    scored = asyncio.run(scenario())
    assert sum(recorder.batches) == 20
    assert max(recorder.batches) <= 4
    assert len(recorder.batches) < 20  # items arriving together were batched
    assert recorder.depth == 0
    for i, item in enumerate(scored):
        (single,) = ticket_model.predict([TEXTS[i % len(TEXTS)]]).items
        assert item.result.predicted_class == single.predicted_class
        assert 1 <= item.batch_size <= 4
        assert item.compute_seconds > 0


def test_a_lone_request_does_not_wait_for_company(ticket_model):
    async def scenario() -> float:
        batcher = _batcher(ticket_model, Recorder(), max_latency_s=5.0)
        start = time.perf_counter()
        await batcher.infer([TEXTS[0]])
        elapsed = time.perf_counter() - start
        await batcher.close()
        return elapsed

    assert asyncio.run(scenario()) < 1.0


def test_a_bulk_request_is_split_into_full_batches(ticket_model):
    recorder = Recorder()

    async def scenario() -> list[Any]:
        batcher = _batcher(ticket_model, recorder, max_batch_size=8)
        results = await batcher.infer(TEXTS * 4)
        await batcher.close()
        return results

    results = asyncio.run(scenario())
    assert recorder.batches == [8, 8, 4]
    assert [r.batch_size for r in results] == [8] * 16 + [4] * 4
    assert (recorder.peak, recorder.depth) == (12, 0)  # the backlog left after each batch


def test_a_full_queue_sheds_load(ticket_model):
    async def scenario() -> None:
        batcher = _batcher(ticket_model, Recorder(), max_queue=8)
        with pytest.raises(QueueFull):
            await batcher.infer(TEXTS * 2)
        await batcher.close()

    asyncio.run(scenario())


def test_abandoned_items_are_skipped(ticket_model):
    recorder = Recorder()

    async def scenario() -> None:
        batcher = _batcher(ticket_model, recorder)
        abandoned = asyncio.create_task(batcher.infer(TEXTS))
        await asyncio.sleep(0)  # its items are queued; the worker has not run yet
        abandoned.cancel()
        with pytest.raises(asyncio.CancelledError):
            await abandoned
        (result,) = await batcher.infer([TEXTS[0]])
        assert result.result.failure is None
        await batcher.close()

    asyncio.run(scenario())
    assert recorder.batches == [1]
    assert recorder.depth == 0


def test_closing_fails_the_items_still_waiting(ticket_model):
    recorder = Recorder()

    async def scenario() -> None:
        batcher = _batcher(ticket_model, recorder)
        waiting = asyncio.create_task(batcher.infer(TEXTS))
        await asyncio.sleep(0)
        await batcher.close()
        with pytest.raises(RuntimeError, match="closed"):
            await waiting

    asyncio.run(scenario())
    assert recorder.batches == []
    assert recorder.depth == 0
