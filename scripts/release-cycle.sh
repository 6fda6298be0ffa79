#!/usr/bin/env bash
# The whole release cycle on one machine, on the embedded store by default (set
# SERVEWATCH_DATABASE_URL for PostgreSQL): build and check a release, serve it, build a
# retrained candidate, replay stored traffic through it, canary it with gated automatic
# promotion, then roll back to the parent release. docs/releases.md explains each step.
#
#   bash scripts/release-cycle.sh            # ~4 minutes; starts afresh in var/release-cycle
set -euo pipefail
cd "$(dirname "$0")/.."

command -v uv >/dev/null || python3 -m pip install --quiet uv
uv sync --frozen --quiet

# A home of its own, started afresh (the store is SQLite in it unless SERVEWATCH_DATABASE_URL
# names another).
export SERVEWATCH_HOME=var/release-cycle
export SERVEWATCH_MODELS_HOME=$SERVEWATCH_HOME/bentoml
export COLUMNS="${COLUMNS:-160}"
export SERVEWATCH_ROLLOUT_POLL_INTERVAL_S=2
export SERVEWATCH_API_KEY=demo-acme-key
PORT="${PORT:-3300}"
URL="http://127.0.0.1:$PORT"
SW=(uv run --frozen servewatch)
rm -rf "$SERVEWATCH_HOME" && mkdir -p "$SERVEWATCH_HOME"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# The example configuration, storing redacted raw inputs so that replay has something to
# re-score (the disagreement gate judges on it too).
CONFIG="$SERVEWATCH_HOME/servewatch.yaml"
uv run --frozen python - "$CONFIG" <<'EOF'
import sys

import yaml

config = yaml.safe_load(open("examples/servewatch.yaml"))
config["redaction"]["store_raw_inputs"] = True
config["release"]["gates"]["min_candidate_rows"] = 40  # a demo's minutes, not a day's traffic
open(sys.argv[1], "w").write(yaml.safe_dump(config, sort_keys=False))
EOF

step "store and models"
"${SW[@]}" db upgrade
"${SW[@]}" models build

step "release 1: routes pinned, checked (golden sets), recorded, packed as a Bento"
"${SW[@]}" release build --config "$CONFIG" --actor release-cycle
"${SW[@]}" release list

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

step "serving release 1 on $URL (2 workers)"
setsid env SERVEWATCH_CONFIG_FILE="$PWD/build/release/servewatch.yaml" \
  "${SW[@]}" serve --host 127.0.0.1 --port "$PORT" --workers 2 \
  >"$SERVEWATCH_HOME/service.log" 2>&1 &
pids+=($!)
for _ in $(seq 120); do
  curl -fsS "$URL/readyz" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "$URL/readyz" && echo
setsid "${SW[@]}" traffic --url "$URL" --rate 30 --duration 900 \
  >"$SERVEWATCH_HOME/traffic.log" 2>&1 &
pids+=($!)
SINCE=$(date -u +%Y-%m-%dT%H:%M:%SZ)

step "a retrained candidate: the risk scorer on another draw of its data"
"${SW[@]}" models build --model risk_scorer --data-seed 1818 | tee "$SERVEWATCH_HOME/candidate.txt"
CANDIDATE=$("${SW[@]}" models list --name risk_scorer --json | uv run --frozen python -c '
import json, sys
built = json.load(sys.stdin)
pinned = open("build/release/servewatch.yaml").read()
print(next(m["version"] for m in built if m["version"] not in pinned))')
echo "candidate: risk_scorer:$CANDIDATE"
"${SW[@]}" release check --candidate "risk_scorer:$CANDIDATE" --config "$CONFIG"

step "one minute of traffic, then replay it through the candidate"
sleep 60
"${SW[@]}" replay --candidate "risk_scorer:$CANDIDATE" --since "$SINCE" \
  --config "$CONFIG" --out "$SERVEWATCH_HOME/replay" || echo "(a replay gate failed)"

step "canary: 25 % -> 50 % -> 100 %, each step judged by the gates, golden set after each"
"${SW[@]}" rollout start --candidate "risk_scorer:$CANDIDATE" --steps 25,50,100 \
  --config "$CONFIG" --actor release-cycle
"${SW[@]}" rollout promote --auto --interval 20 --max-wait 300 \
  --url "$URL" --config "$CONFIG" --actor release-cycle
"${SW[@]}" rollout list

step "rollback: the promoted candidate is undone on every worker within seconds, golden set checked"
"${SW[@]}" rollback --config-out "$SERVEWATCH_HOME/rolled-back.yaml" --url "$URL" \
  --config "$CONFIG" --actor release-cycle
"${SW[@]}" rollout list

step "the record: audit chain intact"
"${SW[@]}" audit verify
echo
echo "service log: $SERVEWATCH_HOME/service.log; replay report: $SERVEWATCH_HOME/replay/"
