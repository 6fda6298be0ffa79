"""Checks before any traffic moves: a candidate loads, runs on the provider the configuration
asks for, its dependencies (the store, the model registry) answer, and its golden set passes on
the serving path, in process or against a running service over HTTP."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from core.config import AppConfig, GoldenGates, Settings
from core.contracts import ENDPOINT_TABLE, Endpoint
from service.golden import (
    CaseVerdict,
    GoldenCase,
    GoldenSetMissing,
    GoldenVerdict,
    failed_case,
    golden_cases,
    judge_case,
    judge_model,
)
from service.runtime import ItemResult, LoadedModel, load_model, requested_providers
from storage.probe import StoreProbe

HTTP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Check:
    """One check's outcome: what it checked, on what, and the problem (None: passed)."""

    name: str  # store, registry, loads, provider, golden, readyz
    subject: str
    problem: str | None = None

    @property
    def passed(self) -> bool:
        return self.problem is None


@dataclass
class CheckReport:
    """Every check run, and the golden sets judged."""

    checks: list[Check] = field(default_factory=list)
    golden: list[GoldenVerdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def add_golden(self, subject: str, verdict: GoldenVerdict) -> None:
        self.golden.append(verdict)
        problem = None
        if not verdict.passed:
            problem = (
                f"{len(verdict.failing)} of {len(verdict.cases)} golden cases failing "
                f"(accuracy {verdict.accuracy:.2f}, at least {verdict.min_accuracy:g} needed)"
            )
        self.checks.append(Check("golden", subject, problem))

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": [
                {"check": c.name, "subject": c.subject, "problem": c.problem} for c in self.checks
            ],
            "golden": [v.as_json() for v in self.golden],
        }

    def audit_details(self) -> dict[str, Any]:
        """What a release's audit event records of its checks."""
        accuracy = {f"{v.model}:{v.version}": round(v.accuracy, 4) for v in self.golden}
        return {"passed": self.passed, "golden_accuracy": accuracy}


# -- in process ----------------------------------------------------------------------------


def check_models(settings: Settings, tags: Iterable[tuple[str, str]]) -> CheckReport:
    """Check model versions (name, version or `latest`) in process: the store answers, and
    each version is in the registry, loads, runs on the requested provider and passes its
    golden set through the worker's inference code."""
    report = CheckReport()
    probe = StoreProbe(settings.resolved_database_url)
    try:
        report.checks.append(Check("store", "store", probe()))
    finally:
        probe.close()
    for name, version in tags:
        _check_model(settings, name, version, report)
    return report


def _check_model(settings: Settings, name: str, version: str, report: CheckReport) -> None:
    from service.models.registry import get_model

    try:
        registered = get_model(name, version, home=settings.bentoml_home)
    except LookupError as exc:
        report.checks.append(Check("registry", f"{name}:{version}", str(exc)))
        return
    subject = f"{registered.name}:{registered.version}"
    report.checks.append(Check("registry", subject))
    try:
        model = load_model(
            registered,
            use_cuda=settings.use_cuda,
            intra_op_threads=settings.ort_intra_op_threads,
            inter_op_threads=settings.ort_inter_op_threads,
        )
    except Exception as exc:  # onnxruntime raises its own, unexported, exception classes
        report.checks.append(Check("loads", subject, f"ONNX Runtime cannot load it: {exc}"))
        return
    report.checks.append(Check("loads", subject))
    report.checks.append(Check("provider", subject, _provider_problem(model, settings.use_cuda)))
    gates = settings.config.release.golden
    try:
        verdict = judge_model(
            model, tolerance=gates.confidence_tolerance, min_accuracy=gates.min_accuracy
        )
    except GoldenSetMissing as exc:
        report.checks.append(Check("golden", subject, str(exc)))
        return
    report.add_golden(subject, verdict)


def _provider_problem(model: LoadedModel, use_cuda: bool) -> str | None:
    expected = requested_providers(use_cuda)[0]
    if model.provider != expected:
        return f"runs on {model.provider}, {expected} was requested"
    return None


# -- over HTTP -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceTarget:
    """A running service: its base URL, a tenant's API key, and the configuration it serves."""

    url: str
    api_key: str
    config: AppConfig
    models_home: Path


def check_service(
    target: ServiceTarget,
    gates: GoldenGates,
    versions: Mapping[str, str] | None = None,
    *,
    client: httpx.Client | None = None,
) -> CheckReport:
    """Check a running service: /readyz answers 200, and the golden set of the version each
    endpoint routes to (or of `versions[model]`) passes when posted to the endpoint."""
    http = client or httpx.Client(base_url=target.url, timeout=HTTP_TIMEOUT_S)
    try:
        return _check_service(http, target, gates, versions or {})
    finally:
        if client is None:
            http.close()


def _check_service(
    http: httpx.Client, target: ServiceTarget, gates: GoldenGates, versions: Mapping[str, str]
) -> CheckReport:
    from service.models.registry import get_model

    report = CheckReport()
    try:
        ready = http.get("/readyz")
        problem = (
            None if ready.status_code == 200 else f"HTTP {ready.status_code}: {ready.text[:200]}"
        )
    except httpx.HTTPError as exc:
        problem = f"no answer: {exc}"
    report.checks.append(Check("readyz", target.url, problem))
    tenant = target.config.tenant_for_key(target.api_key)
    if tenant is None:
        report.checks.append(Check("tenant", target.url, "the API key is no tenant's"))
        return report
    for entry in _endpoints(target.config, tenant, versions):
        ref = target.config.routing[entry.name].default
        subject = f"{entry.name} ({ref.model})"
        try:
            registered = get_model(
                ref.model, versions.get(ref.model, ref.version), home=target.models_home
            )
            cases = golden_cases(registered.metadata)
        except (LookupError, GoldenSetMissing) as exc:
            report.checks.append(Check("golden", subject, str(exc)))
            continue
        verdicts = _post_cases(http, target, entry, cases, registered.version, gates)
        verdict = GoldenVerdict(registered.name, registered.version, verdicts, gates.min_accuracy)
        report.add_golden(f"{entry.name} -> {registered.name}:{registered.version}", verdict)
    return report


def _endpoints(config: AppConfig, tenant: str, versions: Mapping[str, str]) -> list[Endpoint]:
    """The endpoints the tenant may call (only those serving a model of `versions`, if any)."""
    allowed = [e for e in ENDPOINT_TABLE if config.tenants[tenant].allows(e.name)]
    return [e for e in allowed if not versions or e.model in versions]


def _post_cases(
    http: httpx.Client,
    target: ServiceTarget,
    entry: Endpoint,
    cases: Sequence[GoldenCase],
    version: str,
    gates: GoldenGates,
) -> list[CaseVerdict]:
    headers = {"Authorization": f"Bearer {target.api_key}"}
    size = target.config.limits.max_bulk_items if entry.bulk else 1
    verdicts: list[CaseVerdict] = []
    for start in range(0, len(cases), size):
        chunk = cases[start : start + size]
        try:
            answer = http.post(entry.route, json=_payload(entry, chunk), headers=headers)
        except httpx.HTTPError as exc:
            verdicts += [failed_case(case, f"no answer: {exc}") for case in chunk]
            continue
        if answer.status_code != 200:
            problem = f"HTTP {answer.status_code}: {answer.text[:120]}"
            verdicts += [failed_case(case, problem) for case in chunk]
            continue
        body = answer.json()
        items = body["predictions"] if entry.bulk else [body]
        # An answer by another version (a canary's share) is held to the schema and the true
        # class only: the golden set's confidences are this version's.
        same = body["model_version"] == version
        verdicts += [
            judge_case(case, _item(item), tolerance=gates.confidence_tolerance, reproduce=same)
            for case, item in zip(chunk, items, strict=True)
        ]
    return verdicts


def _payload(entry: Endpoint, cases: Sequence[GoldenCase]) -> dict[str, Any]:
    if entry.bulk:
        return {"tickets": [case.input for case in cases]}
    key = "text" if entry.payload == "ticket" else "features"
    return {key: cases[0].input}


def _item(answer: Mapping[str, Any]) -> ItemResult:
    return ItemResult(
        str(answer["predicted_class"]), float(answer["confidence"]), dict(answer["probabilities"])
    )
