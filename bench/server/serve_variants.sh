#!/usr/bin/env bash
# Serves one model as several variants (a binary, its environment, its flags), one at a time, and puts the same HTTP
# workloads through each, in rounds that alternate the variants, so a difference is read against the spread between
# rounds of the same variant. Each run prints the load tool's figures and what the engine did meanwhile
# (bench/server/batch_stats.py over /metrics), e.g. whether the engine or the server bounds a workload.
#
#   bash bench/server/serve_variants.sh --model /tmp/qwen3-0.6b-random --workloads queries,query \
#     'main=build/embedserve' 'nopoll=build/embedserve --busy-poll-us 0' 'two=EMBEDSERVE_X=1 /tmp/exp/embedserve --dp 2'
#
# A variant is LABEL=[NAME=VALUE ...] BINARY [serve flags ...]; it runs `BINARY serve --model-path MODEL --device
# DEVICE --port PORT FLAGS` with those variables set. Workloads (bench/server/http_load.py writes their requests once):
#   queries  15-word queries on --connections keep-alive connections (default 128), closed loop, --seconds each
#   query    the same queries on one connection
#   query16  queries of exactly 16 tokens (the EOS included: http_load.py queries --tokens 16) on one connection
#   bulk     6,000 texts of 16-512 tokens, 64 a request, 16 in flight, each request once
# The replay is the native embedserve_http_load (--load; default: build/bench/server/load/embedserve_http_load).
# It runs from the repository root: relative paths (model, binaries, --load) are taken from there.
set -uo pipefail
cd "$(dirname "$0")/../.."

model= device=cuda workloads=queries rounds=2 seconds=5 port=30290 connections=128
load=build/bench/server/load/embedserve_http_load
usage() { echo "usage: serve_variants.sh --model DIR [--device cuda|cpu] [--workloads queries,query,query16,bulk] [--rounds N] [--seconds S] [--connections N] [--port P] [--load PATH] LABEL=[VAR=VALUE ...] BINARY [FLAGS ...] ..." >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --model) model=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --load) load=$2; shift 2 ;;
    -h|--help) usage ;;
    --*) echo "serve_variants.sh: unknown flag $1" >&2; usage ;;
    *) break ;;
  esac
done
[ -n "$model" ] && [ $# -gt 0 ] || usage
[ -x "$load" ] || { echo "serve_variants.sh: no load tool at $load (build it, or pass --load)" >&2; exit 2; }
for spec in "$@"; do
  [[ $spec == *=* ]] || { echo "serve_variants.sh: a variant is LABEL=[VAR=VALUE ...] BINARY [FLAGS ...], not '$spec'" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/server/http_load.py queries --write-bodies "$work/queries.req" --count 20000 > /dev/null || exit 1
[[ ,$workloads, == *,query16,* ]] && { python3 bench/server/http_load.py queries --tokens 16 --write-bodies "$work/query16.req" --count 20000 > /dev/null || exit 1; }
[[ ,$workloads, == *,bulk,* ]] && { python3 bench/server/http_load.py bulk --write-bodies "$work/bulk.req" --texts 6000 > /dev/null || exit 1; }

# run_one ROUND WORKLOAD SPEC
run_one() {
  local round=$1 workload=$2 spec=$3
  local label=${spec%%=*} words env=() bin pid
  read -r -a words <<< "${spec#*=}"
  while [[ ${words[0]:-} == *=* ]]; do env+=("${words[0]}"); words=("${words[@]:1}"); done
  bin=${words[0]:-}
  [ -x "$bin" ] || { echo "round $round $label $workload: no binary '$bin'"; return 1; }
  # A server left on the port would answer for this one, which then fails to bind: measure nothing instead.
  if curl -s -o /dev/null "localhost:$port/health" 2> /dev/null; then
    echo "round $round $label $workload: something already answers on port $port (pick --port)"
    return 1
  fi
  env "${env[@]}" "$bin" serve --model-path "$model" --device "$device" --port "$port" "${words[@]:1}" \
    > /dev/null 2> "$work/serve.log" &
  pid=$!
  for _ in $(seq 1200); do
    curl -sf "localhost:$port/health" > /dev/null 2>&1 && break
    kill -0 $pid 2> /dev/null || break
    sleep 0.05
  done
  if ! kill -0 $pid 2> /dev/null || ! curl -sf "localhost:$port/health" > /dev/null 2>&1; then
    echo "round $round $label $workload: the server did not come up: $(tail -1 "$work/serve.log")"
    kill $pid 2> /dev/null; wait $pid 2> /dev/null
    return 1
  fi
  curl -s "localhost:$port/metrics" > "$work/before.txt"
  local url=http://127.0.0.1:$port result
  case $workload in
    queries) result=$(timeout $((${seconds%.*} + 60)) "$load" --url "$url" --bodies "$work/queries.req" --connections "$connections" \
                        --threads 4 --warmup 1 --duration "$seconds" --workload queries 2> /dev/null) ;;
    query|query16) # one connection: the 15-word queries' bodies, or the 16-token ones
      local bodies=$work/queries.req
      [ "$workload" = query16 ] && bodies=$work/query16.req
      result=$(timeout $((${seconds%.*} + 60)) "$load" --url "$url" --bodies "$bodies" --connections 1 --threads 1 \
                 --warmup 1 --duration "$seconds" --workload "$workload" 2> /dev/null) ;;
    bulk) result=$(timeout 300 "$load" --url "$url" --bodies "$work/bulk.req" --once --connections 16 --workload bulk 2> /dev/null) ;;
    *) echo "serve_variants.sh: unknown workload $workload (queries, query, query16, bulk)" >&2; kill $pid; wait $pid; exit 2 ;;
  esac
  curl -s "localhost:$port/metrics" > "$work/after.txt"
  echo "$result" > "$work/load.json"
  echo "round $round $label $workload: $(python3 bench/server/batch_stats.py "$work/before.txt" "$work/after.txt" "$work/load.json")"
  kill -TERM $pid; wait $pid 2> /dev/null
}

status=0
for round in $(seq "$rounds"); do
  for workload in ${workloads//,/ }; do
    for spec in "$@"; do run_one "$round" "$workload" "$spec" || status=1; done
  done
done
exit $status
