#!/usr/bin/env bash
# Memory and CPU of the agent binary (release), measured from /proc:
#  1. steady: scraping the example app every second for SECONDS (default 60), writing to a real
#     influxd, as the tutorial's sidecar does;
#  2. receiver down: scraping a real node_exporter (~500 metrics a scrape) with the output
#     pointing at a closed port until the default 10,000-metric buffer is full.
# Needs influxd and prometheus-node-exporter (Debian packages influxdb, prometheus-node-exporter).
# Usage: agent/bench/footprint.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
cargo build --release -q -p agent -p app
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 200); do curl -s -o /dev/null "$1" && return; sleep 0.05; done; echo "no answer at $1" >&2; exit 1; }
clk=$(getconf CLK_TCK)
# Peak RSS (KiB) and CPU seconds of a pid.
peak_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
cpu_secs() { awk -v t="$clk" '{print ($14 + $15) / t}' "/proc/$1/stat"; }

app_port=$(port); metrics_port=$(port); influx_port=$(port); rpc_port=$(port); node_port=$(port)
target/release/app --listen 127.0.0.1:$app_port --metrics-listen 127.0.0.1:$metrics_port 2>/dev/null &
pids+=($!)
INFLUXDB_META_DIR=$work/meta INFLUXDB_DATA_DIR=$work/data INFLUXDB_DATA_WAL_DIR=$work/wal \
INFLUXDB_HTTP_BIND_ADDRESS=127.0.0.1:$influx_port INFLUXDB_BIND_ADDRESS=127.0.0.1:$rpc_port \
INFLUXDB_REPORTING_DISABLED=true INFLUXDB_HTTP_LOG_ENABLED=false influxd run >/dev/null 2>&1 &
pids+=($!)
prometheus-node-exporter --web.listen-address=127.0.0.1:$node_port >/dev/null 2>&1 &
pids+=($!)
wait_up http://127.0.0.1:$metrics_port/
wait_up http://127.0.0.1:$influx_port/ping
wait_up http://127.0.0.1:$node_port/metrics

cat > "$work/steady.conf" <<CONF
[agent]
  interval = "1s"
  flush_interval = "1s"
  omit_hostname = true
[[inputs.prometheus]]
  urls = ["http://127.0.0.1:$metrics_port/metrics"]
  namepass = ["requests"]
[[outputs.influxdb]]
  urls = ["http://127.0.0.1:$influx_port"]
  database = "autoscale"
CONF
target/release/agent --config "$work/steady.conf" 2>/dev/null &
agent=$!; pids+=($agent)
sleep 2
start_cpu=$(cpu_secs $agent)
sleep "$secs"
end_cpu=$(cpu_secs $agent)
echo "steady (app every 1 s, ${secs} s): peak RSS $(( $(peak_kib $agent) / 1024 )) MiB ($(peak_kib $agent) KiB), CPU $(awk -v a="$start_cpu" -v b="$end_cpu" -v s="$secs" 'BEGIN { printf "%.3f", (b - a) / s * 100 }') % of a core"
kill $agent

dead=$(port); self=$(port)
cat > "$work/down.conf" <<CONF
[agent]
  interval = "1s"
  flush_interval = "1s"
  omit_hostname = true
[[inputs.prometheus]]
  urls = ["http://127.0.0.1:$node_port/metrics"]
[[outputs.influxdb]]
  urls = ["http://127.0.0.1:$dead"]
  database = "autoscale"
  timeout = "1s"
CONF
target/release/agent --config "$work/down.conf" --metrics-listen 127.0.0.1:$self 2>/dev/null &
agent=$!; pids+=($agent)
wait_up http://127.0.0.1:$self/
for _ in $(seq 120); do
  sleep 1
  size=$(curl -s http://127.0.0.1:$self/ | awk '/^agent_buffer_metrics/ {print $2}')
  dropped=$(curl -s http://127.0.0.1:$self/ | awk '/^agent_dropped_metrics_total.*overflow/ {print $2}')
  if [ "${dropped:-0}" != "0" ]; then break; fi
done
sleep 5
echo "receiver down, buffer full (size $size, $dropped dropped so far): peak RSS $(( $(peak_kib $agent) / 1024 )) MiB ($(peak_kib $agent) KiB)"
