"""ONNX Runtime sessions, the output-schema check, and adaptive micro-batching of inference."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

logger = logging.getLogger("servewatch.runtime")

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
# float32 probabilities sum to 1 within ~1e-6; anything further off is a broken model.
PROBABILITY_TOLERANCE = 1e-3
SCHEMA_FAILURE_REASONS = ("shape", "non_finite", "out_of_range", "not_normalized", "unknown_class")


class InputMismatch(ValueError):
    """The input does not fit the model (e.g. its feature set differs from the model's)."""


class ModelUnavailable(Exception):
    """A model cannot be reached (its model service is down or not answering)."""


class QueueFull(Exception):
    """The batcher's queue is at its bound: the caller should shed load."""


def gpu_present() -> bool:
    """Whether an NVIDIA driver is visible to this process."""
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()


def requested_providers(use_cuda: bool) -> list[str]:
    """Providers to ask ONNX Runtime for: CUDA first when enabled and a GPU is there."""
    import onnxruntime as ort

    # onnxruntime-gpu lists CUDA even without a GPU and then logs an error at session creation;
    # asking only where a driver exists keeps CPU machines quiet.
    if use_cuda and CUDA_PROVIDER in ort.get_available_providers() and gpu_present():
        return [CUDA_PROVIDER, CPU_PROVIDER]
    return [CPU_PROVIDER]


def create_session(
    onnx_path: Path, *, use_cuda: bool, intra_op_threads: int, inter_op_threads: int
) -> Any:
    """An InferenceSession for `onnx_path` with the configured providers and thread counts."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(
        str(onnx_path), sess_options=options, providers=requested_providers(use_cuda)
    )


@dataclass(frozen=True)
class ItemResult:
    """One item's output: its decision, or the output-schema rule it broke."""

    predicted_class: str | None
    confidence: float | None
    probabilities: dict[str, float] | None
    failure: str | None = None


@dataclass(frozen=True)
class BatchResult:
    items: tuple[ItemResult, ...]
    seconds: float

    @property
    def size(self) -> int:
        return len(self.items)


def check_output(row: np.ndarray, label: object, classes: Sequence[str]) -> ItemResult:
    """Apply the output schema to one probability row and its label output."""
    if row.shape != (len(classes),):
        return ItemResult(None, None, None, "shape")
    if not np.all(np.isfinite(row)):
        return ItemResult(None, None, None, "non_finite")
    if np.any(row < -PROBABILITY_TOLERANCE) or np.any(row > 1 + PROBABILITY_TOLERANCE):
        return ItemResult(None, None, None, "out_of_range")
    if abs(float(row.sum()) - 1.0) > PROBABILITY_TOLERANCE:
        return ItemResult(None, None, None, "not_normalized")
    if str(label) not in classes:
        return ItemResult(None, None, None, "unknown_class")
    best = int(np.argmax(row))
    probabilities = {
        name: min(max(float(p), 0.0), 1.0) for name, p in zip(classes, row, strict=True)
    }
    return ItemResult(classes[best], probabilities[classes[best]], probabilities)


class ModelInput(Protocol):
    """What preparing a request value needs to know of a model."""

    name: str
    version: str
    input_kind: str
    features: tuple[str, ...]


def prepare_input(model: ModelInput, value: Any) -> Any:
    """A request value in the form the model takes (tabular: features in model order)."""
    if model.input_kind == "text":
        return str(value)
    features = dict(value)
    missing = [name for name in model.features if name not in features]
    unknown = sorted(set(features) - set(model.features))
    if missing or unknown:
        parts = []
        if missing:
            parts.append("missing features: " + ", ".join(missing))
        if unknown:
            parts.append("unknown features: " + ", ".join(unknown))
        raise InputMismatch(f"{model.name} {model.version}: " + "; ".join(parts))
    return [float(features[name]) for name in model.features]


class LoadedModel:
    """A registered model with its live session; `predict` runs one batch."""

    def __init__(self, registered: Any, session: Any) -> None:
        metadata = registered.metadata
        self.registered = registered
        self.name: str = registered.name
        self.version: str = registered.version
        self.classes: tuple[str, ...] = tuple(registered.classes)
        self.input_kind: str = metadata["input"]["kind"]
        self.features: tuple[str, ...] = tuple(metadata["input"].get("features", ()))
        self._input_name: str = metadata["onnx"]["input_name"]
        self._outputs = [metadata["onnx"]["label_output"], metadata["onnx"]["probabilities_output"]]
        self.session = session
        self.provider: str = session.get_providers()[0]

    @property
    def resource_class(self) -> str:
        return "cpu" if self.provider == CPU_PROVIDER else "gpu"

    def prepare(self, value: Any) -> Any:
        """A request value in the form `predict` takes (tabular: features in model order)."""
        return prepare_input(self, value)

    def predict(self, prepared: Sequence[Any]) -> BatchResult:
        """Run one batch of prepared values; items that break the output schema say why."""
        if self.input_kind == "text":
            tensor = np.array(prepared, dtype=object).reshape(-1, 1)
        else:
            tensor = np.asarray(prepared, dtype=np.float32).reshape(-1, len(self.features))
        start = time.perf_counter()
        labels, probabilities = self.session.run(self._outputs, {self._input_name: tensor})
        seconds = time.perf_counter() - start
        probabilities = np.asarray(probabilities)
        if probabilities.ndim != 2 or not len(probabilities) == len(labels) == len(prepared):
            failed = ItemResult(None, None, None, "shape")
            return BatchResult(tuple(failed for _ in prepared), seconds)
        items = tuple(
            check_output(row, label, self.classes)
            for row, label in zip(probabilities, labels, strict=True)
        )
        return BatchResult(items, seconds)

    def sample_check(self) -> str | None:
        """None when the metadata's sample input gives its expected class, else why not."""
        sample = self.registered.metadata["sample"]
        result = self.predict([self.prepare(sample["input"])]).items[0]
        if result.failure is not None:
            return f"sample output broke the output schema ({result.failure})"
        if result.predicted_class != sample["expected_class"]:
            return f"sample gave {result.predicted_class!r}, expected {sample['expected_class']!r}"
        return None


def load_model(
    registered: Any, *, use_cuda: bool, intra_op_threads: int, inter_op_threads: int
) -> LoadedModel:
    """Open a session on a registered model and log the provider really in use."""
    session = create_session(
        registered.onnx_path,
        use_cuda=use_cuda,
        intra_op_threads=intra_op_threads,
        inter_op_threads=inter_op_threads,
    )
    model = LoadedModel(registered, session)
    requested = requested_providers(use_cuda)[0]
    log = logger.warning if model.provider != requested else logger.info
    log(
        "model %s %s runs on %s (requested %s)",
        model.name,
        model.version,
        model.provider,
        requested,
    )
    return model


class BatchObserver(Protocol):
    """What the batcher reports (instrumentation implements it)."""

    def queued(self, model: LoadedModel, delta: int) -> None: ...

    def batch_done(self, model: LoadedModel, result: BatchResult) -> None: ...


@dataclass(frozen=True)
class Scored:
    """An item's result plus its share of the batch it ran in."""

    result: ItemResult
    batch_size: int
    compute_seconds: float


@dataclass
class _Pending:
    value: Any
    future: asyncio.Future[Scored]
    enqueued: float


class MicroBatcher:
    """Adaptive batching of one route's items for one model, in the worker's event loop.

    A batch leaves when it is full, when its oldest item has waited `max_latency_s`, or as soon
    as the next item is not expected before that (inter-arrival times are tracked), so a lone
    request never waits for company that is unlikely to come.
    """

    def __init__(
        self,
        model: LoadedModel,
        *,
        max_batch_size: int,
        max_latency_s: float,
        executor: Executor,
        max_queue: int,
        observer: BatchObserver | None = None,
    ) -> None:
        self.model = model
        self.max_batch_size = max_batch_size
        self.max_latency_s = max_latency_s
        self.max_queue = max_queue
        self._executor = executor
        self._observer = observer
        self._queue: deque[_Pending] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._last_arrival: float | None = None
        self._gap = math.inf
        self._reported = 0  # the queue length last reported to the observer

    async def infer(self, values: Sequence[Any]) -> list[Scored]:
        """Results for prepared `values`, in order; cancel to abandon the waiting ones."""
        if len(self._queue) + len(values) > self.max_queue:
            raise QueueFull(f"{self.model.name}: {len(self._queue)} items already waiting")
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._note_arrival(now)
        pending = [_Pending(value, loop.create_future(), now) for value in values]
        self._queue.extend(pending)
        self._ensure_worker().set()
        return list(await asyncio.gather(*(p.future for p in pending)))

    async def close(self) -> None:
        """Stop the worker; items still waiting fail."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(RuntimeError("batcher closed"))
        self._report_queued()

    def _note_arrival(self, now: float) -> None:
        if self._last_arrival is not None:
            sample = min(now - self._last_arrival, 1.0)
            self._gap = sample if math.isinf(self._gap) else 0.8 * self._gap + 0.2 * sample
        self._last_arrival = now

    def _ensure_worker(self) -> asyncio.Event:
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work())
        return self._wakeup

    async def _work(self) -> None:
        assert self._wakeup is not None
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._fill()
            batch = self._take()
            if batch:
                await self._run(batch)

    async def _fill(self) -> None:
        """Wait for more items while one is expected before the oldest item's deadline."""
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        deadline = self._queue[0].enqueued + self.max_latency_s
        while len(self._queue) < self.max_batch_size:
            remaining = deadline - loop.time()
            if remaining <= 0 or self._gap >= remaining:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=min(remaining, 2 * self._gap))
            except TimeoutError:
                return

    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        while self._queue and len(batch) < self.max_batch_size:
            item = self._queue.popleft()
            if not item.future.done():  # cancelled by a timed-out caller
                batch.append(item)
        self._report_queued()
        return batch

    async def _run(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(
                self._executor, self.model.predict, [item.value for item in batch]
            )
        except Exception as exc:  # the model failed: every waiting caller learns why
            logger.exception("inference failed for %s %s", self.model.name, self.model.version)
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        if self._observer is not None:
            self._observer.batch_done(self.model, result)
        share = result.seconds / result.size
        for item, item_result in zip(batch, result.items, strict=True):
            if not item.future.done():
                item.future.set_result(Scored(item_result, result.size, share))

    def _report_queued(self) -> None:
        """Report the items left waiting, once a batch (not on every arrival: the gauge is
        read once a scrape, and a call per request costs the event loop)."""
        delta = len(self._queue) - self._reported
        if delta and self._observer is not None:
            self._observer.queued(self.model, delta)
        self._reported += delta


# Items a batcher may hold, in batches of its route's size, before it sheds load.
QUEUE_BATCHES = 64


def route_batcher(
    model: LoadedModel,
    policy: Any,
    *,
    executor: Executor,
    max_bulk_items: int,
    observer: BatchObserver | None,
) -> MicroBatcher:
    """The batcher of one route's items for `model`, by the route's policy (a
    core.config.BatchPolicy; None: one item at a time)."""
    size = policy.max_batch_size if policy else 1
    latency_s = (policy.max_latency_ms if policy else 1) / 1000.0
    return MicroBatcher(
        model,
        max_batch_size=size,
        max_latency_s=latency_s,
        executor=executor,
        max_queue=max(size * QUEUE_BATCHES, max_bulk_items),
        observer=observer,
    )
