#!/usr/bin/env bash
# Set up the uv environment and run the main job on the embedded default (SQLite under var/):
# the local stack — models, service, monitors scheduler, demo traffic, and Prometheus plus
# Alertmanager when their binaries are installed. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# Prometheus and Alertmanager from Debian, so that the alerts are seen firing (the stack runs
# without them, and says so, where they cannot be installed).
packages=()
command -v prometheus >/dev/null || packages+=(prometheus)
command -v amtool >/dev/null || packages+=(prometheus-alertmanager)
if [ ${#packages[@]} -gt 0 ]; then
  echo "== apt-get install ${packages[*]}"
  { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; } \
    || echo "could not install ${packages[*]}: the stack runs without them"
fi
sync_env
uv run --frozen servewatch db upgrade
uv run --frozen servewatch models build
uv run --frozen servewatch models list
# Without arguments: four minutes, long enough to see the injected drift judged and alerted.
[ $# -eq 0 ] && set -- --for 240
exec uv run --frozen servewatch stack up "$@"
