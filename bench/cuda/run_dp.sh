#!/usr/bin/env bash
# --dp on two GPUs (device kind nvidia-h200-x2) in a few minutes of device time: the bulk HTTP workload (texts of
# 16–512 tokens, 64 per request, 16 in flight, in arrival order: bench/server/http_load.py writes the requests, the
# native embedserve_http_load replays them, as run_on_device.sh's http step does) against --dp 1 and then --dp 2 on
# random checkpoints of the real 0.6B and 4B shapes, the speed-up, the vectors of --dp 2 checked bit for bit against
# --dp 1's (the same 2,000 texts, a SHA-256 per request: http_load.py --vector-digests), and the injected-failure
# scenarios of tests/e2e/test_replicas.py on the CUDA engine (one replica per GPU).
# Takes `embedserve` and `embedserve_http_load` (build/bench/server/load/) built elsewhere from
# .carry/cuda-bin.tar.xz, as bench/cuda/run_on_device.sh does (without the native tool, http_load.py times the runs
# too: one aiohttp process, which may be the bound at --dp 2 on the 0.6B); logs under $OUT.
#   bash bench/cuda/run_dp.sh
#   MODELS=small TEXTS_SMALL=48000 bash bench/cuda/run_dp.sh    # knobs: MODELS (small large), TEXTS_*, DIGEST_TEXTS,
#                                                                SERVE_ARGS
# Both runs get the same host threads (SERVE_ARGS, default 8 tokenizer and 4 network threads of the 32 cores): at
# --dp 2 on the 0.6B the server must tokenise and serialise ~1M tokens/s, which the default 2 threads would cap.
source "$(dirname "$0")/device_env.sh"

step "machine"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader | tee "$OUT/dp_gpus.txt"
[ "$(wc -l < "$OUT/dp_gpus.txt")" -ge 2 ] || { echo "--dp 2 needs two GPUs (device kind nvidia-h200-x2)"; exit 1; }

# cuBLAS: the loader's path, else CUDA's folder, else PyTorch's pip wheel.

SMALL=/tmp/qwen3-0.6b-random
LARGE=/tmp/qwen3-4b-random
MODELS=${MODELS:-small large}
step "checkpoints"
for name in $MODELS; do
  dir=$([ $name = small ] && echo $SMALL || echo $LARGE)
  config=$([ $name = small ] && echo 0.6B || echo 4B)
  random_checkpoint $config $dir "$OUT/checkpoint_$name.log" &
done
wait
for name in $MODELS; do
  dir=$([ $name = small ] && echo $SMALL || echo $LARGE)
  [ -f $dir/model.safetensors.done ] || { echo "no checkpoint for $name: $(tail -3 "$OUT/checkpoint_$name.log")"; exit 1; }
  cp tests/data/qwen3-tokenizer/* "$dir/"
done

LOAD=$BIN/embedserve_http_load
python3 bench/server/http_load.py bulk --write-bodies /tmp/dp-bulk-small.req --texts ${TEXTS_SMALL:-24000} || status=1
python3 bench/server/http_load.py bulk --write-bodies /tmp/dp-bulk-large.req --texts ${TEXTS_LARGE:-8000} || status=1
for name in $MODELS; do
  dir=$([ $name = small ] && echo $SMALL || echo $LARGE)
  # Enough tokens for ~10 s at --dp 1 (0.6B ≈ 6.3M tokens, 4B ≈ 2.1M).
  texts=$([ $name = small ] && echo ${TEXTS_SMALL:-24000} || echo ${TEXTS_LARGE:-8000})
  for dp in 1 2; do
    step "bulk over HTTP: $name, --dp $dp, $texts texts of 16–512 tokens, 64 per request, 16 in flight"
    serve 3012$dp "$OUT/dp_serve_${name}_dp$dp.log" --model-path $dir --device cuda --dp $dp \
      ${SERVE_ARGS:---tokenizer-threads 8 --http-threads 4}
    pid=$served
    grep -o "ready in.*" "$OUT/dp_serve_${name}_dp$dp.log" | sed 's/; served as.*;/; …;/'
    # The same texts twice, untimed: warm-up (graphs recorded at a shape's second call, the allocator's first
    # batches) and the vectors' digests, for the bitwise comparison and, pass against pass, run-to-run on one server.
    for pass in 1 2; do
      timeout 200 python3 bench/server/http_load.py --url http://127.0.0.1:3012$dp bulk --texts ${DIGEST_TEXTS:-2000} \
        --vector-digests "$OUT/dp_digests_${name}_dp${dp}_$pass.json" > /dev/null 2>> "$OUT/dp_client_${name}.log" \
        || status=1
    done
    if [ -x "$LOAD" ]; then
      timeout 300 "$LOAD" --url http://127.0.0.1:3012$dp --bodies /tmp/dp-bulk-$name.req --once --connections 16 \
        --workload "$name dp$dp bulk" 2>> "$OUT/dp_client_${name}.log" | tee "$OUT/dp_bulk_${name}_dp$dp.log" || status=1
    else
      timeout 300 python3 bench/server/http_load.py --url http://127.0.0.1:3012$dp bulk --texts $texts \
        2>> "$OUT/dp_client_${name}.log" | tee "$OUT/dp_bulk_${name}_dp$dp.log" || status=1
    fi
    curl -s localhost:3012$dp/metrics | grep -E '^embedserve_(replica_|gpu_memory)' | tee "$OUT/dp_metrics_${name}_dp$dp.txt"
    kill -TERM $pid; wait $pid
  done
  step "$name: --dp 2 against --dp 1"
  python3 - "$OUT" "$name" <<'PY' || status=1
import json, sys
out, name = sys.argv[1], sys.argv[2]
rate = {}
for dp in (1, 2):
    text = open(f"{out}/dp_bulk_{name}_dp{dp}.log").read()
    line = json.loads(next(l for l in text.splitlines() if l.startswith("{")))  # the load tools' JSON line
    assert line["errors"] == 0 and line["tokens_per_s"], f"--dp {dp}: {text.strip()}"
    rate[dp] = float(line["tokens_per_s"])
digests = {(dp, p): json.load(open(f"{out}/dp_digests_{name}_dp{dp}_{p}.json")) for dp in (1, 2) for p in (1, 2)}
def agree(a, b):
    return sum(digests[a][k] == digests[b].get(k) for k in digests[a])
one, two = digests[(1, 2)], digests[(2, 2)]
same = agree((1, 2), (2, 2))
print(f"{name}: --dp 1 {rate[1]:,.0f} tokens/s, --dp 2 {rate[2]:,.0f} tokens/s: {rate[2] / rate[1]:.2f}x (goal 1.9x); "
      f"vectors bitwise equal in {same} of {len(one)} requests (run to run on one server: --dp 1 "
      f"{agree((1, 1), (1, 2))}, --dp 2 {agree((2, 1), (2, 2))} of {len(one)})")
sys.exit(0 if same == len(one) == len(two) else 1)
PY
done

step "injected failures on the CUDA engine: tests/e2e/test_replicas.py on the 0.6B shape, one replica per GPU"
dir=$SMALL
[ -f $dir/model.safetensors.done ] || dir=$LARGE
timeout 300 python3 tests/e2e/test_replicas.py --bin "$BIN/embedserve" --model $dir --device cuda 2>&1 | tail -20 \
  | tee "$OUT/dp_faults.log"
grep -q "exited 1: OK" "$OUT/dp_faults.log" || status=1

tar -czf "$OUT/dp_logs.tar.gz" -C "$OUT" $(cd "$OUT" && ls dp_* 2>/dev/null | grep -v dp_logs.tar.gz) 2>/dev/null
echo
echo "overall status: $status"
exit $status
