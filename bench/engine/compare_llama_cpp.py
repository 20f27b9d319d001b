#!/usr/bin/env python3
"""Measures embedserve's CPU engine against llama.cpp's CPU backend on the same checkpoint, machine and threads.

    python3 bench/engine/make_random_checkpoint.py --config tests/data/configs/0.6B --out /tmp/qwen3-0.6b-random
    python3 bench/engine/compare_llama_cpp.py --model /tmp/qwen3-0.6b-random --embedserve build/embedserve

Steps, each skipped when its output is already in --cache (outside the repository; nothing of llama.cpp is
kept in it):
1. llama.cpp: the llama-cpp-python sdist from PyPI (`pip download`, the only source we use) bundles llama.cpp's
   sources under vendor/llama.cpp; we build llama.cpp's own llama-embedding from them for the CPU
   (GGML_NATIVE=ON, no BLAS), so the comparison runs llama.cpp's tool, not Python bindings.
2. GGUF: llama.cpp's convert_hf_to_gguf.py needs torch, which we do not install, so this script writes the
   GGUF itself with the `gguf` package (PyPI): the metadata llama.cpp's qwen3 loader reads, the tokenizer
   from tests/data/qwen3-tokenizer, and the checkpoint's bf16 tensors as F16, F32 or BF16 (norms stay F32, as
   the converter keeps them). llama.cpp loading it and decoding the expected token counts is the check.
3. Runs, alternating engines and repeated `--rounds` times because shared machines are noisy:
   - ours: `embedserve bench --max-num-batched-tokens 1024` (1024 / seq_len inputs of random ids per batch) in each
     mode of --ours: `bf16` (bf16 weights, the CPU's default, with the fastest GEMM kernel the CPU runs),
     `bf16:KERNEL` (EMBEDSERVE_CPU_GEMM=KERNEL, e.g. avx2 to measure an AVX2-only CPU's path on this one), `f32`
     (the parity mode: OpenBLAS sgemm; with the environment as it is and, where OPENBLAS_CORETYPE is set, once
     more without it, since it selects OpenBLAS's kernels);
   - llama.cpp: `llama-embedding` (last-token pooling) on 1024 / seq_len texts of seq_len tokens per batch,
     the same 1024 tokens per llama_decode; the first batch warms up and is not timed, as in ours.
   tokens per CPU-second: ours measures its own CPU time over the timed batches; for llama.cpp the child's
   CPU time (getrusage) minus that of a run on one 2-token text, so loading is not counted (its warm-up
   batch is, with its tokens).

Offline (a machine with no compiler or registry, e.g. the GPU machine): --llama-embedding takes a prebuilt
llama-embedding (bench/engine/build_llama_cpp_static.sh builds static ones per instruction set) and skips step 1,
and --gguf-py a folder holding llama.cpp's pure-Python `gguf` package (the sdist's vendor/llama.cpp/gguf-py, which
the same archive carries) when `import gguf` fails. bench/cuda/run_on_device.sh's `cpu` step runs it that way.

On the GPU (--device cuda): the same runs with both engines on the GPU; --llama-embedding then names a CUDA build
(bench/engine/build_llama_cpp_cuda.sh), and run_on_device.sh's `llamacuda` step runs it.
"""

import argparse
import json
import os
import re
import resource
import statistics
import struct
import subprocess
import sys
import tarfile

import numpy as np

VERSION = "0.3.36"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CMAKE_FLAGS = ["-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DGGML_BLAS=OFF", "-DLLAMA_CURL=OFF",
               "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_OPENSSL=OFF"]
TOOLS = ["llama-embedding"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- 1. llama.cpp from the PyPI sdist ----

def llama_cpp_tools(cache, sdist, jobs):
    """Returns {tool: path}, downloading the sdist and building the tools first if they are not in cache."""
    build = os.path.join(cache, "build")
    tools = {t: os.path.join(build, "bin", t) for t in TOOLS}
    if all(os.path.exists(p) for p in tools.values()):
        return tools
    name = f"llama_cpp_python-{VERSION}"
    if not sdist:
        sdist = os.path.join(cache, name + ".tar.gz")
        if not os.path.exists(sdist):
            log(f"downloading llama-cpp-python {VERSION} (sdist) from PyPI into {cache}")
            subprocess.run([sys.executable, "-m", "pip", "download", f"llama-cpp-python=={VERSION}", "--no-deps",
                            "--no-binary", ":all:", "-d", cache], check=True)
    src = os.path.join(cache, "src", name, "vendor", "llama.cpp")
    if not os.path.isdir(src):
        with tarfile.open(sdist) as tar:
            tar.extractall(os.path.join(cache, "src"), filter="data")
    log(f"building {', '.join(TOOLS)} from {src} with {jobs} jobs (tens of minutes on 2 cores)")
    subprocess.run(["cmake", "-S", src, "-B", build, "-G", "Ninja", *CMAKE_FLAGS], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build, "-j", str(jobs), "--target", *TOOLS], check=True)
    return tools


# ---- 2. safetensors -> GGUF ----

def read_safetensors(path):
    """Yields (name, float32 array) from a safetensors file of bf16/f16/f32 tensors, one at a time."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        begin, end = meta["data_offsets"]
        raw = data[begin:end]
        if meta["dtype"] == "BF16":  # bf16 is the top half of an f32
            arr = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif meta["dtype"] in ("F16", "F32"):
            arr = raw.view(np.float16 if meta["dtype"] == "F16" else np.float32).astype(np.float32)
        else:
            raise SystemExit(f"{path}: tensor {name} has dtype {meta['dtype']}; expected BF16, F16 or F32")
        yield name, arr.reshape(meta["shape"])


def gguf_name(hf):
    """Maps a Qwen3 checkpoint tensor name to llama.cpp's (what convert_hf_to_gguf.py writes)."""
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    if hf in fixed:
        return fixed[hf]
    m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.weight", hf)
    parts = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
             "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
             "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
    if not m or m.group(2) not in parts:
        raise SystemExit(f"unexpected tensor {hf}: not a Qwen3 (Qwen3ForCausalLM / Qwen3Model) checkpoint")
    return f"blk.{m.group(1)}.{parts[m.group(2)]}.weight"


def write_gguf(model_dir, tokenizer_dir, out, wtype):
    import gguf  # PyPI `gguf` or --gguf-py, imported here so that --help works without it

    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    if c.get("model_type") != "qwen3":
        raise SystemExit(f"{model_dir}: model_type is {c.get('model_type')!r}; this converter handles qwen3")
    with open(os.path.join(tokenizer_dir, "tokenizer.json")) as f:
        tok = json.load(f)
    n_vocab = c["vocab_size"]
    hd = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    ftype = {"f16": gguf.LlamaFileType.MOSTLY_F16, "f32": gguf.LlamaFileType.ALL_F32,
             "bf16": gguf.LlamaFileType.MOSTLY_BF16}[wtype]

    w = gguf.GGUFWriter(out + ".part", "qwen3")
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name("qwen3-embedding-random")
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_block_count(c["num_hidden_layers"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(c["num_attention_heads"])
    w.add_head_count_kv(c.get("num_key_value_heads", c["num_attention_heads"]))
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_freq_base(float(c.get("rope_theta", 10000.0)))
    w.add_layer_norm_rms_eps(c["rms_norm_eps"])
    w.add_pooling_type(gguf.PoolingType.LAST)  # Qwen3-Embedding's 1_Pooling: last token
    w.add_file_type(ftype)

    # Tokenizer: byte-level BPE (llama.cpp "gpt2" model, "qwen2" pre-tokenizer), one entry per embedding row;
    # ids past the table (the checkpoint may have fewer rows than the tokenizer's added tokens) are dropped,
    # missing ones padded as convert_hf_to_gguf.py does.
    tokens = ["[PAD%d]" % i for i in range(n_vocab)]
    types = [gguf.TokenType.UNUSED] * n_vocab
    for piece, i in tok["model"]["vocab"].items():
        if i < n_vocab:
            tokens[i], types[i] = piece, gguf.TokenType.NORMAL
    for a in tok["added_tokens"]:
        if a["id"] < n_vocab:
            tokens[a["id"]] = a["content"]
            types[a["id"]] = gguf.TokenType.CONTROL if a["special"] else gguf.TokenType.USER_DEFINED
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    eos = c.get("eos_token_id", 151643)
    w.add_bos_token_id(c.get("bos_token_id", eos))
    w.add_eos_token_id(eos)
    w.add_pad_token_id(eos)
    w.add_add_bos_token(False)
    w.add_add_eos_token(True)  # Qwen3-Embedding appends <|endoftext|>, whose state is the embedding

    for name, arr in read_safetensors(os.path.join(model_dir, "model.safetensors")):
        if arr.ndim == 1 or wtype == "f32":  # norms stay f32, as llama.cpp's converter keeps them
            w.add_tensor(gguf_name(name), arr.astype(np.float32))
        elif wtype == "f16":
            w.add_tensor(gguf_name(name), arr.astype(np.float16))
        else:
            w.add_tensor(gguf_name(name), gguf.quants.quantize(arr, gguf.GGMLQuantizationType.BF16),
                         raw_dtype=gguf.GGMLQuantizationType.BF16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(out + ".part", out)


def gguf_for(cache, model_dir, tokenizer_dir, wtype):
    out = os.path.join(cache, f"{os.path.basename(os.path.normpath(model_dir))}-{wtype}.gguf")
    if not os.path.exists(out):
        log(f"writing {out}")
        write_gguf(model_dir, tokenizer_dir, out, wtype)
    return out


# ---- 3. runs ----

def run_child(cmd, env=None):
    """Runs cmd; returns (stdout, stderr, CPU seconds of the child: user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}{p.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return p.stdout, p.stderr, cpu


def run_ours(binary, model_dir, threads, lengths, seconds, mode, batch_tokens, unset_coretype=False, device="cpu"):
    """One `embedserve bench` run in `mode` ("bf16", "bf16:KERNEL" or "f32") on `device`; returns (label,
    {seq_len: (tok/s, tok/cpu-s)})."""
    dtype, _, kernel = mode.partition(":")
    env = dict(os.environ)
    if unset_coretype:
        env.pop("OPENBLAS_CORETYPE", None)
    env.pop("EMBEDSERVE_CPU_GEMM", None)
    if kernel:
        env["EMBEDSERVE_CPU_GEMM"] = kernel
    out, _, _ = run_child([binary, "bench", "--model-path", model_dir, "--device", device]
                          + (["--threads", str(threads)] if device == "cpu" else [])
                          + ["--dtype", dtype, "--seq-len", ",".join(map(str, lengths)), "--max-num-batched-tokens",
                             str(batch_tokens), "--seconds", str(seconds)], env)
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 8 and f[0].isdigit():
            rows[int(f[0])] = (float(f[4]), float(f[7]))  # tokens/s, tokens/cpu-s
    if device != "cpu":
        return f"embedserve {dtype} on {device}", rows
    if dtype == "f32":
        kernels = re.search(r"OpenBLAS (\S+) kernels", out)
        return f"embedserve f32, OpenBLAS {kernels.group(1) if kernels else '?'}", rows
    gemm = re.search(r"GEMMs: (\S+)", out)
    return f"embedserve bf16 weights, {gemm.group(1) if gemm else '?'}", rows


def prompts_of_length(tokenizer_dir, length, count, seed):
    """`count` texts of `length - 1` random single-token words: with the <|endoftext|> llama.cpp appends (the
    GGUF's add_eos_token), each is `length` tokens, like our bench's inputs of random ids."""
    with open(os.path.join(tokenizer_dir, "tokenizer.json")) as f:
        vocab = json.load(f)["model"]["vocab"]
    # " word" pieces (byte-level BPE writes the space as U+0120): each pre-tokenizes alone and is one token
    words = sorted(p[1:] for p in vocab if re.fullmatch("\u0120[a-z]{3,10}", p))
    rng = np.random.default_rng(seed)
    return ["".join(" " + words[i] for i in rng.integers(0, len(words), length - 1)) for _ in range(count)]


def run_llama(tool, gguf_path, tokenizer_dir, threads, length, batches, work, batch_tokens, device="cpu"):
    """llama-embedding over 1 + `batches` batches of batch_tokens / length prompts of `length` tokens, one
    llama_decode per batch (-b/-ub batch_tokens; -np so that each sequence has its own KV stream). llama.cpp's perf
    counters do not time embedding decodes, so the time is read from the timestamps of its per-batch log lines:
    from the second batch's start (the first warms up) to the start of a last, 2-token batch. On `device` cuda
    every layer is offloaded (-ngl) and flash attention is on (-fa), llama.cpp's fastest GPU settings; a batch's
    embeddings are read back before the next batch starts, so the timestamps still time whole batches."""
    # llama.cpp holds at most 256 sequences per batch (LLAMA_MAX_SEQ): 16-token inputs go 4,096 tokens at a time.
    pl = min(max(1, batch_tokens // length), 256)
    # -np 1 makes llama-embedding reserve outputs for 256 sequences, which a batch of fewer than 256 tokens cannot
    # hold (its GGML_ASSERT n_outputs_max), and the tool does not take -kvu: small calls need two sequences or more.
    if pl == 1 and length < 256:
        raise SystemExit(f"llama-embedding cannot decode one {length}-token sequence per call; give --batch-tokens "
                         f"{2 * length} (two sequences per call)")

    def run(prompts):
        path = os.path.join(work, "prompts.txt")
        with open(path, "w") as f:
            f.write("\n".join(prompts))
        out, err, cpu = run_child([tool, "-m", gguf_path, "-f", path, "-c", str(pl * length), "-b", str(pl * length),
                                   "-ub", str(pl * length), "-np", str(pl), "-t", str(threads), "-tb", str(threads),
                                   "--pooling", "last", "--log-timestamps"]
                                  + (["-ngl", "999", "-fa", "on"] if device == "cuda" else []))
        starts = [(60 * int(m[0]) + int(m[1]) + int(m[2]) / 1e3 + int(m[3]) / 1e6, int(m[4]))
                  for m in re.findall(r"(\d+)\.(\d+)\.(\d+)\.(\d+) I batch_decode: n_tokens = (\d+)", err + out)]
        return starts, cpu, err

    starts, cpu, err = run(prompts_of_length(tokenizer_dir, length, pl * (batches + 1), length) +
                           prompts_of_length(tokenizer_dir, 2, 1, 0))
    if [n for _, n in starts] != [pl * length] * (batches + 1) + [2]:
        raise SystemExit(f"llama-embedding decoded batches of {[n for _, n in starts]} tokens, expected "
                         f"{batches + 1} of {pl * length} and one of 2: did the prompts tokenize to {length}?\n"
                         + err[-2000:])
    _, cpu_base, _ = run(prompts_of_length(tokenizer_dir, 2, 1, 0))  # load + warm-up + 2 tokens
    tps = batches * pl * length / (starts[-1][0] - starts[1][0])
    cpu_tps = (batches + 1) * pl * length / max(cpu - cpu_base, 1e-9)
    info = re.search(r"system_info:.*", err)
    return tps, cpu_tps, (info.group(0).strip() if info else "?")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="Qwen3 checkpoint directory (config.json, model.safetensors)")
    ap.add_argument("--embedserve", default=os.path.join(REPO, "build", "embedserve"), help="our binary")
    ap.add_argument("--tokenizer", default=os.path.join(REPO, "tests", "data", "qwen3-tokenizer"))
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/embedserve-llama-cpp"),
                    help="where the sdist, llama.cpp build and GGUF files go (outside the repository)")
    ap.add_argument("--sdist", help="an already downloaded llama_cpp_python-%s.tar.gz" % VERSION)
    ap.add_argument("--llama-embedding", help="a prebuilt llama-embedding (e.g. from build_llama_cpp_static.sh): "
                    "no sdist, no build")
    ap.add_argument("--gguf-py", help="folder holding llama.cpp's gguf package (gguf-py), used when `import gguf` "
                    "fails")
    ap.add_argument("--batch-tokens", type=int, default=1024,
                    help="tokens per engine call on both sides (seq_len divides it into inputs)")
    ap.add_argument("--jobs", type=int, default=2, help="build jobs")
    ap.add_argument("--weights", default="bf16,f16", help="llama.cpp weight types: f16, f32, bf16")
    ap.add_argument("--ours", default="bf16,f32",
                    help="our modes: bf16 (bf16 weights, fastest kernel), bf16:KERNEL (EMBEDSERVE_CPU_GEMM: "
                         "avx512bf16, avx512, avx2, portable), f32 (OpenBLAS)")
    ap.add_argument("--threads", default=f"1,{os.cpu_count()}")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="cuda: both engines on the GPU (ours --device cuda; llama.cpp -ngl 999 -fa on, a CUDA "
                         "build such as bench/engine/build_llama_cpp_cuda.sh makes); give --batch-tokens 16384 "
                         "and --threads N (llama.cpp's host threads)")
    ap.add_argument("--seq-len", default="32,512")
    ap.add_argument("--rounds", type=int, default=2, help="times each configuration runs, alternating engines")
    ap.add_argument("--seconds", type=float, default=6, help="ours: seconds per length")
    ap.add_argument("--batches", type=int, default=2, help="llama.cpp: timed 1024-token batches per length")
    ap.add_argument("--prepare-only", action="store_true", help="build and convert, run nothing")
    a = ap.parse_args()

    os.makedirs(a.cache, exist_ok=True)
    if a.gguf_py:
        try:
            import gguf  # noqa: F401  (an installed one wins)
        except ImportError:
            sys.path.insert(0, os.path.abspath(a.gguf_py))
    if a.llama_embedding:
        if not os.access(a.llama_embedding, os.X_OK):
            raise SystemExit(f"--llama-embedding {a.llama_embedding}: not an executable file")
        tools = {"llama-embedding": os.path.abspath(a.llama_embedding)}
    else:
        tools = llama_cpp_tools(a.cache, a.sdist, a.jobs)
    ggufs = {t: gguf_for(a.cache, a.model, a.tokenizer, t) for t in a.weights.split(",")}
    if a.prepare_only:
        return
    threads = [int(t) for t in a.threads.split(",")]
    lengths = [int(n) for n in a.seq_len.split(",")]
    results = {}  # (engine, threads, seq_len) -> [(tokens/s, tokens/cpu-s)] over rounds
    system_info = None
    for rnd in range(a.rounds):
        for t in threads:
            for mode in a.ours.split(","):
                # without OPENBLAS_CORETYPE in the environment both f32 runs would be the same
                unsets = (False, True) if mode == "f32" and "OPENBLAS_CORETYPE" in os.environ else (False,)
                for unset in unsets:
                    label, rows = run_ours(a.embedserve, a.model, t, lengths, a.seconds, mode, a.batch_tokens,
                                           unset, a.device)
                    for n, v in rows.items():
                        results.setdefault((label, t, n), []).append(v)
                        log(f"round {rnd + 1} {label} t={t} len={n}: {v[0]:.1f} tok/s, {v[1]:.1f} tok/cpu-s")
            for wtype, path in ggufs.items():
                for n in lengths:
                    tps, cpu_tps, system_info = run_llama(tools["llama-embedding"], path, a.tokenizer, t, n,
                                                          a.batches, a.cache, a.batch_tokens, a.device)
                    label = f"llama.cpp {wtype.upper()}"
                    results.setdefault((label, t, n), []).append((tps, cpu_tps))
                    log(f"round {rnd + 1} {label} t={t} len={n}: {tps:.1f} tok/s, {cpu_tps:.1f} tok/cpu-s")

    print(f"llama.cpp (llama-cpp-python {VERSION} sdist, {a.llama_embedding or 'built here'}) {system_info}")
    print(f"{a.batch_tokens} tokens per engine call on both sides")
    print(f"each cell: median tokens/s [lowest–highest] over {a.rounds} rounds (median tokens per CPU-second)")
    print("| engine | threads | " + " | ".join(f"seq_len {n}" for n in lengths) + " |")
    print("|---|---|" + "---|" * len(lengths))
    for label in dict.fromkeys(k[0] for k in results):
        for t in threads:
            cells = []
            for n in lengths:
                v = results.get((label, t, n), [])
                tps = [x[0] for x in v]
                cells.append(f"{statistics.median(tps):.0f} [{min(tps):.0f}–{max(tps):.0f}] "
                             f"({statistics.median(x[1] for x in v):.0f})" if v else "-")
            print(f"| {label} | {t} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
