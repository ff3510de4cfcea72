#!/usr/bin/env bash
# Requests/s of GET / for our app and the tutorial-style Python app, measured by wrk in one run.
# Usage: app/bench/wrk-vs-python.sh [seconds] [connections]
# Needs: wrk (Debian package), python3 with flask and prometheus_client (PyPI).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
conns=${2:-32}
cargo build --release -q -p app
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

wait_up() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return; sleep 0.1; done; echo "no answer at $1" >&2; exit 1; }
rps() { wrk -t1 -c"$conns" -d"${secs}s" "$1" | awk '/Requests\/sec/ {print $2}'; }

target/release/app --listen 127.0.0.1:38080 --metrics-listen 127.0.0.1:38000 2>/dev/null &
pids+=($!)
python3 app/bench/tutorial_app.py 38081 38001 >/dev/null 2>&1 &
pids+=($!)
wait_up http://127.0.0.1:38080/
wait_up http://127.0.0.1:38081/

ours=$(rps http://127.0.0.1:38080/)
python=$(rps http://127.0.0.1:38081/)
echo "rust app:   $ours requests/s"
echo "python app: $python requests/s (Flask $(python3 -c 'import importlib.metadata as m; print(m.version("flask"))'), one process)"
awk -v a="$ours" -v b="$python" 'BEGIN { printf "ratio:      %.1fx\n", a / b }'
echo "counted by the rust app: $(curl -s http://127.0.0.1:38000/ | awk '/^requests\{/ {print $2}')"
