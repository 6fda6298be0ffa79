"""The runtime of one worker process: its models, their batchers, the metrics and the
prediction log, and the start-up checks behind /readyz.

Importing it loads no settings and no BentoML: the Bento class builds one per worker, and
tests can build one from any `Settings`.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from core.catalog import OTHER
from core.config import Settings
from core.digest import input_hmac
from service.busy_share import INTERVAL_S, BusyShare
from service.errors import ServiceError
from service.faults import Fault
from service.instrumentation import Instrumentation, ItemOutcome, RequestTrace
from service.models.mirror import VersionMirror
from service.prediction_rows import fill_inputs, prediction_rows
from service.readiness import Readiness
from service.rollout_watch import RolloutWatch
from service.routing import Router
from service.runtime import (
    InputMismatch,
    LoadedModel,
    MicroBatcher,
    ModelUnavailable,
    QueueFull,
    Scored,
    load_model,
    requested_providers,
    route_batcher,
)
from storage.engine import create_small_engine
from storage.probe import StoreProbe
from storage.rollouts import rollouts_in_force

if TYPE_CHECKING:
    from service.log_tick import TickJournal

logger = logging.getLogger("servewatch.service")

SERVING_CHECKS = ("models", "sample")
_COMPUTE_SECONDS = operator.attrgetter("compute_seconds")


class ServiceRuntime:
    """Models, batchers, metrics and prediction log of one worker process."""

    def __init__(self, settings: Settings, *, registry: CollectorRegistry | None) -> None:
        config = settings.config
        self.settings = settings
        self.router = Router(config.routing)
        self.instrumentation = Instrumentation.create(
            enabled=settings.metrics_enabled,
            registry=registry,
            tenants=config.tenants,
            flush_interval_s=settings.metrics_flush_interval_s,
        )
        self._timers_started = False
        self._metrics_flusher: asyncio.TimerHandle | None = None
        self.busy = BusyShare()  # the worker's CPU time, shared over the requests it serves
        self._busy_timer: asyncio.TimerHandle | None = None
        # Replaced, never changed in place: the rollout watch adds candidates from its thread.
        self.models: dict[tuple[str, str], LoadedModel] = {}
        # The start-up checks and the rollout watch may both add models (split: on two threads).
        self._models_lock = threading.Lock()
        self._unservable: set[tuple[str, str]] = set()  # candidates that failed to load
        self._batchers: dict[tuple[str, str, str], MicroBatcher] = {}
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ort")
        self._store_check = StoreProbe(settings.resolved_database_url)
        checks: dict[str, Callable[[], str | None]] = {
            "models": self._load_models,
            "provider": self._check_providers,
            "sample": self._check_samples,
        }
        if settings.prediction_log_enabled:  # without a log the service needs no store
            checks["store"] = self._store_check
        self.readiness = Readiness(checks, live=self._live_checks())
        self._serving = False
        self.log = self._prediction_log() if settings.prediction_log_enabled else None
        self._redact = self._redactor()
        self._digest = self._input_digest()
        self._fills = self._digest is not None or settings.config.redaction.store_raw_inputs
        self._journal_tick = self._tick_journal()
        self.rollouts = self._rollout_watch()
        # Where there is a store, the versions served are registered in it for the monitors.
        self.mirror = (
            VersionMirror(settings.resolved_database_url) if self.log is not None else None
        )

    def start(self) -> None:
        """Start the prediction log, run the start-up checks once, mirror the versions loaded,
        then watch the rollouts."""
        if self.log is not None:
            self.log.start()
        self._first_evaluation()
        if self.mirror is not None:
            self.mirror.add(model.registered for model in self.models.values())
            self.mirror.start()
        if self.rollouts is not None:
            self.rollouts.start()

    def _first_evaluation(self) -> None:
        """The start-up checks, run once before serving (loading the models)."""
        self.readiness.evaluate()

    def keep_timers(self) -> None:
        """Start the periodic jobs on the running event loop, once (called by every request):
        buffered metric updates written every flush interval, the worker's CPU read every
        busy-time interval."""
        if self._timers_started:
            return
        self._timers_started = True
        loop = asyncio.get_running_loop()
        if self.instrumentation.buffered:
            interval = self.instrumentation.flush_interval_s
            self._metrics_flusher = loop.call_later(interval, self._flush_metrics, loop, interval)
        if self.log is not None:  # the share is only stored with the prediction rows
            self.busy.start()
            self._busy_timer = loop.call_later(INTERVAL_S, self._close_busy_interval, loop)

    def _close_busy_interval(self, loop: asyncio.AbstractEventLoop) -> None:
        self.busy.close_interval()
        self._busy_timer = loop.call_later(INTERVAL_S, self._close_busy_interval, loop)

    def _flush_metrics(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self.instrumentation.flush()
        self._metrics_flusher = loop.call_later(interval, self._flush_metrics, loop, interval)

    async def close(self) -> None:
        """Stop batching and flush the metrics and the prediction log (what can't be written
        stays spilled)."""
        loop = asyncio.get_running_loop()
        if self.rollouts is not None:
            await loop.run_in_executor(None, self.rollouts.close)
            self._rollout_engine.dispose()
        if self.mirror is not None:
            await loop.run_in_executor(None, self.mirror.close)
        for batcher in self._batchers.values():
            await batcher.close()
        for timer in (self._metrics_flusher, self._busy_timer):
            if timer is not None:
                timer.cancel()
        self.instrumentation.flush()
        if self.log is not None:
            await loop.run_in_executor(None, self.log.close)
        self._executor.shutdown(wait=False)
        self._store_check.close()

    @property
    def serving(self) -> bool:
        """Whether business requests can be answered (models loaded, samples right)."""
        if not self._serving:  # passed checks are never re-run, so this only turns on
            results = {r.name: r.ok for r in self.readiness.results()}
            self._serving = all(results.get(name, False) for name in SERVING_CHECKS)
        return self._serving

    def _prediction_log(self) -> Any:
        from service.log_journal import Journal
        from service.prediction_log import PredictionLog

        s = self.settings
        return PredictionLog(
            s.resolved_database_url,
            s.spill_dir,  # shared by the workers: the log names its files per process
            queue_size=s.log_queue_size,
            batch_size=s.log_batch_size,
            flush_interval_s=s.log_flush_interval_s,
            metrics=self.instrumentation.metrics,
            journal=(
                Journal(s.spill_dir, fsync=s.log_fsync, fsync_interval_s=s.log_fsync_interval_s)
                if s.log_journal
                else None
            ),
        )

    def _tick_journal(self) -> TickJournal | None:
        """Journals the answers of each event-loop tick together (with the journal on)."""
        if self.log is None or not self.settings.log_journal:
            return None
        from service.log_tick import TickJournal

        return TickJournal(self.log, self._answer_rows, self._fill_inputs if self._fills else None)

    def _redactor(self) -> Callable[[str], str]:
        redaction = self.settings.config.redaction
        if not redaction.store_raw_inputs:
            return str
        from service.redaction import Redactor

        return Redactor(redaction).redact

    def _input_digest(self) -> Callable[[Any], str] | None:
        """The audit log's input digest (the key stays with the log's record maker)."""
        key = self.settings.audit_hmac_key()
        if key is None:
            logger.warning("no audit key (SERVEWATCH_AUDIT_KEY_FILE): inputs get no digest")
            return None
        return partial(input_hmac, key)

    def _rollout_watch(self) -> RolloutWatch | None:
        interval = self.settings.rollout_poll_interval_s
        if interval <= 0:
            return None
        self._rollout_engine = create_small_engine(self.settings.resolved_database_url)
        return RolloutWatch(
            partial(rollouts_in_force, self._rollout_engine),
            self.router,
            load=self.load_candidate,
            baselines=self._refs_serving,
            export=self.instrumentation.rollout_weights,
            interval_s=interval,
        )

    def load_candidate(self, name: str, version: str) -> bool:
        """Whether a rollout's candidate is servable, loading it (and checking its sample) the
        first time; a candidate that fails is logged once and never serves."""
        key = (name, version)
        if key in self.models:
            return True
        if key in self._unservable:
            return False
        from service.models.registry import get_model

        try:
            registered = get_model(name, version, home=self.settings.bentoml_home)
            loaded = self._loaded(registered.name, registered.version) or self._open(registered)
            problem = loaded.sample_check()
        except ModelUnavailable as exc:  # its model service is down: asked again next time
            logger.warning("rollout candidate %s %s not loaded yet: %s", name, version, exc)
            return False
        except Exception as exc:  # an unknown version, a broken file: the baseline serves
            problem = str(exc)
        if problem is not None:
            logger.error("rollout candidate %s %s cannot serve: %s", name, version, problem)
            self._unservable.add(key)
            return False
        self.instrumentation.model_loaded(loaded)
        with self._models_lock:
            self.models = {**self.models, key: loaded}
        if self.mirror is not None:
            self.mirror.add([loaded.registered])
        return True

    def _refs_serving(self, endpoint: str, name: str, version: str) -> frozenset[tuple[str, str]]:
        """The route references of `endpoint` whose loaded model is `name` `version`."""
        found = set()
        for ref in self.router.targets(endpoint):
            model = self.models.get((ref.model, ref.version))
            if model is not None and (model.name, model.version) == (name, version):
                found.add((ref.model, ref.version))
        return frozenset(found)

    # -- start-up checks -------------------------------------------------------------------

    def _load_models(self) -> str | None:
        from service.models.registry import get_model

        problems = []
        for ref in self.router.targets():
            if (ref.model, ref.version) in self.models:
                continue
            try:
                registered = get_model(ref.model, ref.version, home=self.settings.bentoml_home)
            except LookupError as exc:
                problems.append(f"{ref.model}@{ref.version}: {exc}")
                continue
            loaded = self._loaded(registered.name, registered.version)
            if loaded is None:
                try:
                    loaded = self._open(registered)
                except ModelUnavailable as exc:
                    problems.append(f"{ref.model}@{ref.version}: {exc}")
                    continue
                self.instrumentation.model_loaded(loaded)
            with self._models_lock:
                self.models = {**self.models, (ref.model, ref.version): loaded}
        return "; ".join(problems) or None

    def _open(self, registered: Any) -> LoadedModel:
        """A session on a registered model, in this process."""
        return load_model(
            registered,
            use_cuda=self.settings.use_cuda,
            intra_op_threads=self.settings.ort_intra_op_threads,
            inter_op_threads=self.settings.ort_inter_op_threads,
        )

    def _live_checks(self) -> dict[str, Callable[[], str | None]]:
        """Checks re-run after start-up too (none here: this process holds its models)."""
        return {}

    def _loaded(self, name: str, version: str) -> LoadedModel | None:
        for model in self.models.values():
            if (model.name, model.version) == (name, version):
                return model
        return None

    def _check_providers(self) -> str | None:
        if not self.models:
            return "no model loaded"
        expected = requested_providers(self.settings.use_cuda)[0]
        wrong = [
            f"{m.name} {m.version} runs on {m.provider}, {expected} was expected"
            for m in set(self.models.values())
            if m.provider != expected
        ]
        return "; ".join(wrong) or None

    def _check_samples(self) -> str | None:
        if len(self.models) < len(self.router.targets()):
            return "models not loaded"
        problems = []
        for model in set(self.models.values()):
            problem = model.sample_check()
            if problem is not None:
                problems.append(f"{model.name} {model.version}: {problem}")
        return "; ".join(problems) or None

    # -- requests --------------------------------------------------------------------------

    def resolve(self, trace: RequestTrace) -> LoadedModel:
        """Route the request and attach the serving model to its trace."""
        ref = self.router.route_request(
            trace.endpoint, trace.tenant, trace.region, trace.request_id
        )
        model = self.models.get((ref.model, ref.version))
        if model is None:
            trace.model_name = ref.model
            raise ServiceError("not_ready", f"model {ref.model}@{ref.version} is not loaded")
        trace.routed_to(model)
        return model

    def finish(self, trace: RequestTrace, latency_s: float) -> asyncio.Future[None] | None:
        """Metrics and prediction records of an answered request; with the journal on, a
        future done once its records are journaled: its answer may not go out before."""
        if trace.model_name == OTHER:
            self._label_unrouted(trace)
        outcome = trace.error.code if trace.error is not None else "ok"
        tick = self._journal_tick
        if tick is not None:
            # Journaled: at the end of this event-loop tick the request is counted and its rows
            # are made and written with those of the tick's other answers, before any of them
            # goes out; the redaction and the input digest follow on the writer thread.
            return tick.submit(trace, outcome, latency_s)
        self.instrumentation.request_finished(trace, outcome, latency_s)
        if self.log is not None:  # no journal: the log's writer thread makes the records
            trace.busy_seconds = self._busy_share(trace, latency_s)
            self.log.submit_later(self._rows_of, trace, outcome, latency_s)
        return None

    def _busy_share(self, trace: RequestTrace, latency_s: float) -> float:
        """The worker CPU charged to a request: its own work (time on the loop and inference)
        weighs its share."""
        work = trace.work_until(trace.started + latency_s) + sum(map(_COMPUTE_SECONDS, trace.items))
        return self.busy.charge(work)

    def _answer_rows(self, trace: RequestTrace, outcome: str, latency_s: float) -> list[list[Any]]:
        """Count an answered request, and make its rows for the journal: all but the redacted
        input and its digest, which `_fill_inputs` adds on the writer thread. Counting the
        tick's requests one after the other, while the code is warm, costs less than counting
        each in its own turn (docs/benchmarks.md, session 11)."""
        self.instrumentation.request_finished(trace, outcome, latency_s)
        trace.busy_seconds = self._busy_share(trace, latency_s)
        return prediction_rows(
            trace,
            outcome,
            latency_s,
            store_raw_inputs=False,
            redact=str,
            error_message=trace.error.message if trace.error is not None else None,
        )

    def _fill_inputs(self, rows: list[list[Any]], trace: RequestTrace, *_: Any) -> None:
        fill_inputs(
            rows,
            trace,
            store_raw_inputs=self.settings.config.redaction.store_raw_inputs,
            redact=self._redact,
            digest=self._digest,
        )

    def _rows_of(self, trace: RequestTrace, outcome: str, latency_s: float) -> list[list[Any]]:
        return prediction_rows(
            trace,
            outcome,
            latency_s,
            store_raw_inputs=self.settings.config.redaction.store_raw_inputs,
            redact=self._redact,
            digest=self._digest,
            error_message=trace.error.message if trace.error is not None else None,
        )

    def _label_unrouted(self, trace: RequestTrace) -> None:
        tenant = trace.tenant if trace.tenant in self.settings.config.tenants else None
        try:
            ref = self.router.route(trace.endpoint, tenant, trace.region)
        except ServiceError:
            return
        model = self.models.get((ref.model, ref.version))
        if model is not None:
            trace.routed_to(model)
        else:
            trace.model_name = ref.model

    async def infer(self, trace: RequestTrace, values: Sequence[Any]) -> list[ItemOutcome]:
        """Run `values` through the routed model's batcher; output-schema failures raise."""
        model = trace.model
        if model is None:
            raise ServiceError("not_ready", f"model {trace.model_name} is not loaded")
        try:
            prepared = [model.prepare(value) for value in values]
        except InputMismatch as exc:
            raise ServiceError("validation_error", str(exc), status=422) from exc
        trace.pause(time.perf_counter())  # the loop serves other requests while this one waits
        try:
            scored = await self._scored(trace, model, prepared)
        finally:
            trace.resume(time.perf_counter())
        trace.items = [_outcome(s, value) for s, value in zip(scored, values, strict=True)]
        failures = sorted({s.result.failure for s in scored if s.result.failure is not None})
        if failures:
            raise ServiceError(
                "model_error", "the model's output broke the output schema: " + ", ".join(failures)
            )
        fault: Fault | None = trace.fault
        if fault is not None and fault.error is not None and fault.hits(model.version):
            raise ServiceError(fault.error, "injected fault")
        return trace.items

    async def _scored(
        self, trace: RequestTrace, model: LoadedModel, prepared: list[Any]
    ) -> list[Scored]:
        """The batcher's results, within the request's deadline (and any injected delay)."""
        limit = self.settings.config.limits.request_timeout_s
        deadline = trace.started + limit
        fault: Fault | None = trace.fault
        if fault is not None and fault.latency_ms and fault.hits(model.version):
            await _slow_down(fault.latency_ms / 1000.0, deadline, limit)
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise ServiceError("timeout", f"no answer within {limit:g} s")
        try:
            batcher = self._batcher(trace.endpoint, model)
            return await asyncio.wait_for(batcher.infer(prepared), remaining)
        except QueueFull as exc:
            raise ServiceError("overloaded", str(exc), headers={"Retry-After": "1"}) from exc
        except TimeoutError as exc:
            raise ServiceError("timeout", f"no answer within {limit:g} s") from exc
        except Exception as exc:
            logger.exception("inference failed (request %s)", trace.request_id)
            raise ServiceError("model_error") from exc

    def route_features(self, endpoint: str) -> tuple[str, ...] | None:
        """The feature names every model `endpoint` may route to takes, if they agree."""
        refs = self.router.targets(endpoint)
        models = [self.models.get((ref.model, ref.version)) for ref in refs]
        feature_sets = {m.features for m in models if m is not None}
        if None in models or len(feature_sets) != 1:
            return None
        return feature_sets.pop() or None

    def _batcher(self, endpoint: str, model: LoadedModel) -> MicroBatcher:
        key = (endpoint, model.name, model.version)
        batcher = self._batchers.get(key)
        if batcher is None:
            batcher = route_batcher(
                model,
                self.settings.config.batching.get(endpoint),
                executor=self._executor,
                max_bulk_items=self.settings.config.limits.max_bulk_items,
                observer=self.instrumentation,
            )
            self._batchers[key] = batcher
        return batcher


async def _slow_down(seconds: float, deadline: float, limit: float) -> None:
    """An injected slow model: wait, but never past the request's deadline."""
    await asyncio.sleep(max(0.0, min(seconds, deadline - time.perf_counter())))
    if time.perf_counter() >= deadline:
        raise ServiceError("timeout", f"no answer within {limit:g} s")


def _outcome(scored: Scored, raw_input: Any) -> ItemOutcome:
    result = scored.result
    return ItemOutcome(
        predicted_class=result.predicted_class,
        confidence=result.confidence,
        probabilities=result.probabilities,
        batch_size=scored.batch_size,
        compute_seconds=scored.compute_seconds,
        raw_input=raw_input,
    )
