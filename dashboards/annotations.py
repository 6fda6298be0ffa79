"""Dashboard annotations: releases (a model version starting to serve), rollout steps (a
canary's weight changing) and firing alerts."""

from __future__ import annotations

from typing import Any

from dashboards.datasources import prometheus

# There are no release events yet: a release is a (model, version) whose servewatch_model_info
# series appears after LOOKBACK without it. A restart of the service shorter than that is not
# one, and a rollback to a version unseen for longer is.
LOOKBACK = "1h"
# How long each release stays true, so that it lands on a step of the annotation query: Grafana
# widens the 1m step for long ranges (at most 11,000 points), to 5m only past 38 days.
HOLD = "5m"
STEP = "1m"
INFO = 'servewatch_model_info{model_name=~"$model"}'
BY_VERSION = "max by (model_name, model_version)"
RELEASES = (
    f"{BY_VERSION} ({INFO})\n"
    "unless on (model_name, model_version)\n"
    f"{BY_VERSION} (max_over_time({INFO}[{LOOKBACK}] offset {HOLD}))"
)
# A rollout step: the candidate's weight changed within HOLD, or appeared (the rollout started or
# a worker picked it up) after HOLD without it. An abort or rollback is a change to 0.
CANDIDATE = 'servewatch_rollout_weight{role="candidate", model_name=~"$model"}'
BY_ROLLOUT = "max by (endpoint, model_name, model_version)"
ROLLOUT_STEPS = (
    f"{BY_ROLLOUT} (changes({CANDIDATE}[{HOLD}])) > 0\n"
    "or\n"
    f"{BY_ROLLOUT} ({CANDIDATE})\n"
    "unless on (endpoint, model_name, model_version)\n"
    f"{BY_ROLLOUT} ({CANDIDATE} offset {HOLD})"
)
# `$var|` also matches an empty label: alerts about an endpoint, a target or the pipeline carry
# no model or tenant and show whatever is selected.
ALERTS = 'ALERTS{alertstate="firing", model_name=~"$model|", tenant=~"$tenant|"}'
ALERT_LABELS = ("severity", "endpoint", "model_name", "model_version", "tenant")


def _annotation(name: str, color: str, expr: str, title: str, text: str, tags: str) -> Any:
    return {
        "name": name,
        "datasource": prometheus(),
        "enable": True,
        "hide": False,
        "iconColor": color,
        "expr": expr,
        "step": STEP,
        "titleFormat": title,
        "textFormat": text,
        "tagKeys": tags,
        "useValueForTime": False,
    }


def releases() -> Any:
    """A model version starting to serve, from the model-info series the service exports."""
    return _annotation(
        "Releases",
        "blue",
        RELEASES,
        "Release: {{model_name}} {{model_version}}",
        f"{{{{model_name}}}} version {{{{model_version}}}} started serving (loaded after "
        f"{LOOKBACK} or more without it).",
        "model_name,model_version",
    )


def rollout_steps() -> Any:
    """A canary rollout starting, stepping, promoted, aborted or rolled back."""
    return _annotation(
        "Rollout steps",
        "purple",
        ROLLOUT_STEPS,
        "Rollout step: {{model_name}} {{model_version}} on {{endpoint}}",
        "The weight of canary {{model_name}} {{model_version}} on {{endpoint}} changed (a "
        "rollout started, stepped, was promoted, aborted or rolled back); the Rollout weight "
        "panel of the Serving dashboard shows the step.",
        "endpoint,model_name,model_version",
    )


def alerts() -> Any:
    """Prometheus alerts while they fire (the ALERTS series Prometheus writes for its rules)."""
    return _annotation(
        "Alerts",
        "red",
        ALERTS,
        "{{alertname}}",
        "{{severity}} alert firing",
        ",".join(ALERT_LABELS),
    )


def all_annotations() -> list[Any]:
    return [releases(), rollout_steps(), alerts()]
