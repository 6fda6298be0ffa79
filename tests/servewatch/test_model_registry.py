"""The root CLI hands the monitors the BentoML registry lookups (monitors do not import service)."""

from monitors.cli import registry_hooks
from servewatch.cli import app  # noqa: F401  (importing the root CLI wires the hooks)
from servewatch.model_registry import bentoml_lookups


def test_the_root_cli_hooks_the_bentoml_registry_into_the_monitor_commands():
    assert registry_hooks.connect is bentoml_lookups
