"""Each contract list is written once, in core.contracts; no other module spells one out."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.contracts import (
    ENDPOINT_NAMES,
    ERROR_CODES,
    MONITOR_NAMES,
    MONITOR_TABLE,
    PREDICTION_COLUMNS,
    PUBLIC_PREDICTION_COLUMNS,
    endpoint,
    metric_names,
    model_service_of,
    model_services,
    monitor,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "storage", "service", "monitors", "alerts", "dashboards", "servewatch")
CONTRACTS = ROOT / "core" / "contracts.py"
# Migrations are history: they describe the schema as it was when they were written.
HISTORY = ROOT / "storage" / "migrations"

LISTS = {
    "endpoint names": frozenset(ENDPOINT_NAMES),
    "monitor names": frozenset(MONITOR_NAMES),
    "error codes": frozenset(ERROR_CODES),
    "public prediction columns": frozenset(PUBLIC_PREDICTION_COLUMNS),
    **{
        f"metrics of {entry.name}": frozenset(entry.metric_names)
        for entry in MONITOR_TABLE
        if len(entry.metrics) > 1
    },
}


def _strings(nodes: list[ast.expr | None]) -> set[str]:
    return {n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _spelled_out(node: ast.AST) -> set[str] | None:
    """The string elements of a literal collection that could be a copy of a contract list.

    Dicts count by their keys unless every value is a number or a `Measurement`: a tenant's
    traffic mix names endpoints as data, and a computation returns one measurement per metric
    it computes (that is the metric's definition, not a copy of the list).
    """
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return _strings(list(node.elts))
    if isinstance(node, ast.Dict):
        numbers = all(
            isinstance(v, ast.Constant) and isinstance(v.value, int | float) for v in node.values
        )
        measured = all(
            isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "Measurement"
            for v in node.values
        )
        return None if numbers or measured else _strings(list(node.keys))
    return None


def copies_in(source: str) -> list[tuple[int, str]]:
    """(line, which list) for each literal in `source` that holds a whole contract list."""
    found = []
    for node in ast.walk(ast.parse(source)):
        strings = _spelled_out(node)
        if not strings:
            continue
        for name, names in LISTS.items():
            if names <= strings:
                found.append((getattr(node, "lineno", 0), name))
    return found


def _modules() -> list[Path]:
    paths = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    return sorted(p for p in paths if p != CONTRACTS and HISTORY not in p.parents)


def test_no_module_but_the_contracts_spells_out_a_contract_list():
    copies = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in _modules()
        for line, name in copies_in(path.read_text(encoding="utf-8"))
    ]
    assert copies == []


@pytest.mark.parametrize(
    "source",
    [
        'ENDPOINTS = ("classify_ticket", "classify_tickets", "predict_risk")',
        'known = ["confidence_drift", "class_shift", "schema_failures", "cost", "traffic"]',
        'M = {"psi": 1, "js_distance": "x", "chi_square": None}',
    ],
)
def test_the_check_finds_a_copied_list(source):
    assert copies_in(source)


def test_the_check_leaves_data_that_names_some_entries_alone():
    mix = '{"classify_ticket": 0.6, "classify_tickets": 0.1, "predict_risk": 0.3}'
    assert copies_in(f"mix = {mix}") == []
    assert copies_in('pair = ("classify_ticket", "predict_risk")') == []


def test_contract_lists_are_unique_and_the_lookups_find_every_entry():
    for names in (ENDPOINT_NAMES, MONITOR_NAMES, ERROR_CODES, PREDICTION_COLUMNS):
        assert len(set(names)) == len(names)
    assert all(endpoint(name).name == name for name in ENDPOINT_NAMES)
    assert all(monitor(name).name == name for name in MONITOR_NAMES)
    assert metric_names("class_shift") == ("psi", "js_distance", "chi_square")
    with pytest.raises(KeyError):
        endpoint("nope")


def test_public_columns_are_the_design_contract_in_order():
    assert PUBLIC_PREDICTION_COLUMNS == (
        "request_id",
        "ts",
        "tenant",
        "endpoint",
        "model_name",
        "model_version",
        "predicted_class",
        "confidence",
        "latency_ms",
        "compute_ms",
        "batch_size",
        "status",
    )
    assert PREDICTION_COLUMNS[: len(PUBLIC_PREDICTION_COLUMNS)] == PUBLIC_PREDICTION_COLUMNS


def test_model_services_split_the_endpoints_by_family_and_optionally_isolate_bulk():
    assert model_services() == {
        "ticket": ("classify_ticket", "classify_tickets"),
        "risk": ("predict_risk",),
    }
    assert model_services(isolate_bulk=True) == {
        "ticket": ("classify_ticket",),
        "ticket_bulk": ("classify_tickets",),
        "risk": ("predict_risk",),
    }
    assert model_service_of("classify_tickets", isolate_bulk=True) == "ticket_bulk"
    assert model_service_of("predict_risk", isolate_bulk=True) == "risk"
