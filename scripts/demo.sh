#!/usr/bin/env bash
# Set up the uv environment and run the main job on the embedded default (SQLite under var/):
# the local stack — models, service, monitors scheduler, demo traffic, and Prometheus plus
# Alertmanager when their binaries are installed. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

sync_env
uv run --frozen servewatch db upgrade
uv run --frozen servewatch models build
uv run --frozen servewatch models list
exec uv run --frozen servewatch stack up "$@"
