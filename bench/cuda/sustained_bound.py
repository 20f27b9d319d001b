"""The GEMM-only bound of a model size two ways, in one process on the GPU machine (torch, cuBLAS bf16): as
../shared/tools/hf_bench.py measures it (each projection alone, median of 10 after 3 warm-ups: a burst of a few tens
of ms, at the card's top clocks), and sustained (the layer's four projections back to back, every layer, for
--seconds, as a steady run of the engine keeps the card busy), with the SM clock and power sampled meanwhile. Under
sustained load an H200 sits at its power cap, at lower clocks than the burst's, so the sustained figure is what a
steady engine run can approach.
  python3 bench/cuda/sustained_bound.py --config tests/data/configs/4B/config.json [--tokens 16384] [--seconds 5] [--fp8]
--fp8: the same with e4m3 operands (torch._scaled_mm, bf16 out, as hf_bench.py times FP8): what FP8 weights and
activations could sustain (issue 9), since an FP8 product costs less energy than a bf16 one."""
import argparse
import json
import statistics
import subprocess
import threading
import time

import torch


def sample_clocks(stop, samples):
    while not stop.is_set():
        out = subprocess.run(["nvidia-smi", "--query-gpu=clocks.sm,power.draw", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True).stdout.split(",")
        if len(out) == 2:
            samples.append((float(out[0]), float(out[1])))
        time.sleep(0.2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--tokens", type=int, default=16384)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--fp8", action="store_true")
    args = parser.parse_args()
    c = json.load(open(args.config))
    h, i, layers = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    head_dim = c.get("head_dim", h // c["num_attention_heads"])
    q, kv = c["num_attention_heads"] * head_dim, c["num_key_value_heads"] * head_dim
    shapes = {"qkv": (h, q + 2 * kv), "o": (q, h), "gate_up": (h, 2 * i), "down": (i, h)}
    m = args.tokens
    torch.manual_seed(0)
    xs = {name: torch.randn(m, k, device="cuda", dtype=torch.bfloat16) for name, (k, n) in shapes.items()}
    ws = {name: torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for name, (k, n) in shapes.items()}
    flops = sum(2 * m * k * n for k, n in shapes.values())
    if args.fp8:
        one = torch.tensor(1.0, device="cuda")
        xs = {name: x.to(torch.float8_e4m3fn) for name, x in xs.items()}
        ws = {name: w.to(torch.float8_e4m3fn) for name, w in ws.items()}

        def gemm(name):
            return torch._scaled_mm(xs[name], ws[name].t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    else:
        def gemm(name):
            return torch.nn.functional.linear(xs[name], ws[name])
    print(f"{'e4m3' if args.fp8 else 'bf16'} GEMMs, {m} rows, {layers} layers of {', '.join(shapes)}")

    # Burst, as hf_bench.py: each projection alone, median of 10 timed runs after 3 warm-ups.
    burst_ms = 0.0
    for name in shapes:
        fn = lambda: gemm(name)
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        ts = []
        for _ in range(10):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record(); fn(); e.record(); torch.cuda.synchronize()
            ts.append(s.elapsed_time(e))
        burst_ms += statistics.median(ts)
    print(f"burst (hf_bench.py's way): {flops / burst_ms / 1e9:.0f} TFLOP/s, bound {m / (burst_ms * layers / 1e3):,.0f} tok/s")

    # Sustained: whole passes of every layer's four projections, for --seconds; the last half timed.
    stop, samples = threading.Event(), []
    sampler = threading.Thread(target=sample_clocks, args=(stop, samples))
    sampler.start()
    passes, timed_passes, timed_s, start = 0, 0, 0.0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(layers):
            for name in shapes:
                gemm(name)
        e.record(); torch.cuda.synchronize()
        passes += 1
        if time.perf_counter() - start >= args.seconds / 2:
            timed_passes += 1
            timed_s += s.elapsed_time(e) / 1e3
    stop.set(); sampler.join()
    late = samples[len(samples) // 2:] or samples
    print(f"sustained ({args.seconds:.0f} s, {passes} passes of {layers} layers, the last {timed_passes} timed): "
          f"{flops * layers * timed_passes / timed_s / 1e12:.0f} TFLOP/s, bound {m * timed_passes / timed_s:,.0f} tok/s; "
          f"SM clock {statistics.median(x for x, _ in late):.0f} MHz, power {statistics.median(p for _, p in late):.0f} W "
          f"(medians of the last half's samples)")


if __name__ == "__main__":
    main()
