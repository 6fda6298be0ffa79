#!/usr/bin/env bash
# Set up everything (Debian packages, PostgreSQL, the uv environment) and run lint, types and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

bash scripts/setup-system.sh
sync_env
echo "== ruff"
uv run --frozen ruff check .
uv run --frozen ruff format --check .
echo "== mypy"
uv run --frozen mypy
echo "== import-linter (layers, no SQL outside storage, a framework-free core)"
uv run --frozen lint-imports
echo "== pytest"
uv run --frozen pytest -q -p no:cacheprovider "$@"
