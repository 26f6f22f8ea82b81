#!/bin/bash
# Every broker figure of docs/benchmarks.md in one run: a fresh `summoner serve` (durable,
# sync = "full") per row, `summoner bench broker` against it, and the floor server
# (crates/summoner-server/examples/floor.rs) before and after, since on a shared machine the
# figures only mean something next to what the bare WebSocket stack reaches at the same time.
#
#   cargo build --release -p summoner -p summoner-server --example floor
#   scripts/bench-broker.sh            # about three minutes
#
# Needs ports 17878 and 17879 free, and curl.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${SUMMONER:-$root/target/release/summoner}
floor=${FLOOR:-$root/target/release/examples/floor}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/bench.toml" <<'TOML'
listen = "127.0.0.1:17878"
sync = "full"
[[pool]]
name = "ports"        # 1,000 resources
range = { from = 20000, to = 20999, prop = "port" }
[[pool]]
name = "small"        # 100 resources
range = { from = 30000, to = 30099, prop = "port" }
[[pool]]
name = "one"          # the hand-over
range = { from = 50000, to = 50000, prop = "port" }
[[pool]]
name = "big"          # 10,000 resources, for 10,000 idle sessions each holding one
range = { from = 40000, to = 49999, prop = "port" }
TOML

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

floor_row() {
  "$floor" 127.0.0.1:17879 direct > /dev/null & local fp=$!
  sleep 0.3
  "$bin" bench broker --server http://127.0.0.1:17879 --clients 1000 --duration 8s > "$work/floor.out" &
  local bp=$!
  sleep 2
  local s0 b0 s1 b1
  s0=$(ticks $fp); b0=$(ticks $bp); sleep 4; s1=$(ticks $fp); b1=$(ticks $bp)
  wait $bp; kill $fp; wait $fp 2> /dev/null || true
  echo "== floor (no engine, no journal), 1000 clients"
  grep '^cycles' "$work/floor.out"
  echo "CPU over 4 s: floor $(( s1 - s0 )) ticks, bench $(( b1 - b0 )) ticks (100 ticks = 1 core-second)"
}

row() {
  local name=$1; shift
  rm -rf "$work/data"
  "$bin" serve --config "$work/bench.toml" --data-dir "$work/data" 2> "$work/serve.log" & local sp=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:17878/healthz > /dev/null && break; sleep 0.05; done
  echo "== $name"
  "$bin" bench broker --server http://127.0.0.1:17878 "$@" --server-pid $sp | grep -vE '^summoner bench|^connected'
  kill $sp; wait $sp 2> /dev/null || true
}

floor_row
row "1,000 clients, 1,000 resources" --clients 1000 --duration 10s --pool ports
row "1,000 clients, 100 resources" --clients 1000 --duration 10s --pool small
row "100 clients, one connection per cycle" --clients 100 --duration 10s --pool ports --reconnect
row "hand-over on close" --handover --pool one --duration 5s
row "hand-over when the holder's connection drops" --handover --drop --pool one --duration 5s
row "open loop, 10,000 cycles/s over 1,000 clients" --clients 1000 --duration 10s --pool ports --rate 10000
row "open loop, 15,000 cycles/s over 1,000 clients" --clients 1000 --duration 10s --pool ports --rate 15000
row "100 clients, 1,000 resources" --clients 100 --duration 10s --pool ports
row "10,000 idle sessions" --idle --clients 10000 --pool big
row "10,000 idle sessions, each holding a lease" --idle --hold --clients 10000 --pool big
floor_row
