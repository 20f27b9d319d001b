#!/usr/bin/env python3
"""Finds the first operation where embedserve's Qwen3 forward pass departs from transformers'.

`embedserve embed --dump-intermediates DIR` embeds each text alone and writes every named intermediate of
src/model/qwen3.cc (llama.cpp's names) as DIR/text-{i:05d}/{L}-{name}.npy, float32 [rows, cols], L being
"in" (inp_embd), "00", "01", ... (the layer) or "out" (result_norm), plus DIR/manifest.json:
{"model", "texts", "token_ids", "pooling", "dtype", "layers"}. This tool runs transformers' Qwen3Model on the
same token ids (fed directly: no tokenizer), captures the same tensors with forward hooks, and prints per text
a table of relative error ||ours - ref|| / ||ref|| and max |ours - ref| per (layer, name) in forward order, then
the first one whose relative error exceeds --threshold. Exit status: 0 all within the threshold (missing files
are listed, not failed), 1 a divergence (error above the threshold, NaN, wrong shape, unreadable file), 2 a
usage error (no manifest, a model that does not match the dump, torch missing).

On the GPU machine (torch and transformers installed there):

    ./build/embedserve embed --model-path /models/Qwen3-Embedding-0.6B --input texts.jsonl --output /tmp/v.npy \\
        --device cuda --dtype bf16 --dump-intermediates /tmp/dump
    python3 tools/compare_intermediates.py --dump /tmp/dump --model /models/Qwen3-Embedding-0.6B [--device cuda]
    python3 tools/compare_intermediates.py --dump /tmp/dump --check-only     # files and shapes only, no torch

Which rows: keys and values always cover every token; on the LAST layer under last-token or CLS pooling only
the pooled row goes on after k/v (Qcur .. l_out, and result_norm), so those are compared against transformers'
last (lasttoken) or first (cls) row only; under mean pooling every row.
"""

import argparse
import contextlib
import json
import math
import os
import sys

import numpy as np

# Per-layer intermediates in the order src/model/qwen3.cc produces them.
LAYER_NAMES = ("attn_norm", "Kcur", "Vcur", "Qcur", "kqv_out", "attn_out", "ffn_inp", "ffn_norm", "ffn_gate_up",
               "ffn_act", "ffn_out", "l_out")
# On the last layer under last-token/CLS pooling these (and result_norm) hold only the pooled row.
POOLED_FROM = LAYER_NAMES.index("Qcur")
POOLINGS = ("lasttoken", "mean", "cls")
DEFAULT_THRESHOLD = {"f32": 1e-4, "bf16": 3e-2}
EXIT_OK, EXIT_DIVERGED, EXIT_USAGE = 0, 1, 2

THRESHOLD_HELP = """largest relative error ||ours - ref|| / ||ref|| accepted per intermediate. Default 1e-4 for
f32 dumps: our f32 kernels and torch's differ only in summation order and fusion, about 1e-7..1e-6 per op
(float32 keeps 24 bits, unit roundoff 6e-8, grown by sqrt of the reduction length; 1e-7..4e-7 measured on the
test model), which compounds to ~1e-6..1e-5 by the last of 28-36 layers; 1e-4 leaves 10x headroom, while a real
bug (RoPE pairing, a norm weight, the mask, the kv-head mapping) shows as 1e-2..1. Default 3e-2 for bf16 dumps:
bf16 keeps 8 significant bits (unit roundoff 2^-8 = 3.9e-3), so a tensor rounded once is ~1e-3..4e-3 off the f32
reference, and rounding after every op compounds: transformers' own bfloat16 run is up to 2.5e-2 from its
float32 run on the 2-layer test model (ffn_act, ffn_out). 3e-2 sits just above what bf16 arithmetic does by
itself and below the >=1e-1 of an actual bug; if a deep model's bf16 dump exceeds it smoothly, see how far
transformers' own bf16 drifts (--torch-dtype bfloat16 against an f32 dump) before suspecting a kernel."""


class ToolError(Exception):
    """A one-line error that stops the tool (exit 2)."""


# ---------------------------------------------------------------------------------------------- dump layout

def layer_tag(layer, name):
    if name == "inp_embd":
        return "in"
    if name == "result_norm":
        return "out"
    return f"{layer:02d}"


def forward_order(num_layers):
    """[(layer, name)] in the order the forward pass produces them; layer -1 for inp_embd and result_norm."""
    keys = [(-1, "inp_embd")]
    for layer in range(num_layers):
        keys += [(layer, name) for name in LAYER_NAMES]
    return keys + [(-1, "result_norm")]


def text_dir(dump_dir, index):
    return os.path.join(dump_dir, f"text-{index:05d}")


def file_name(layer, name):
    return f"{layer_tag(layer, name)}-{name}.npy"


def is_pooled(layer, name, num_layers, pooling):
    """True when the dump holds only the pooled row(s) for this intermediate."""
    if pooling == "mean":
        return False
    if name == "result_norm":
        return True
    return layer == num_layers - 1 and LAYER_NAMES.index(name) >= POOLED_FROM


def reference_rows(layer, name, num_layers, pooling, num_tokens):
    """The rows of transformers' [T, cols] tensor the dump's tensor corresponds to."""
    if not is_pooled(layer, name, num_layers, pooling):
        return slice(0, num_tokens)
    return slice(num_tokens - 1, num_tokens) if pooling == "lasttoken" else slice(0, 1)


def expected_shape(layer, name, dims, pooling, num_tokens):
    """[rows, cols] the dump must hold, from config.json's sizes and the text's token count."""
    rows = reference_rows(layer, name, dims["layers"], pooling, num_tokens)
    cols = {"Kcur": dims["kv_dim"], "Vcur": dims["kv_dim"], "Qcur": dims["q_dim"], "kqv_out": dims["q_dim"],
            "ffn_gate_up": 2 * dims["intermediate"], "ffn_act": dims["intermediate"]}.get(name, dims["hidden"])
    return (rows.stop - rows.start, cols)


# ------------------------------------------------------------------------------------ manifest and config

def load_json(path, what):
    if not os.path.isfile(path):
        raise ToolError(f"no {what}: {path} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ToolError(f"cannot read {what} {path}: {e}") from None


def load_manifest(dump_dir):
    """manifest.json, checked: texts and token_ids of equal length, a known pooling and dtype, a layer count."""
    path = os.path.join(dump_dir, "manifest.json")
    m = load_json(path, "manifest")
    if not isinstance(m, dict):
        raise ToolError(f"{path}: expected a JSON object")
    for key in ("texts", "token_ids", "pooling", "dtype", "layers"):
        if key not in m:
            raise ToolError(f"{path}: missing key {key!r}")
    if m["pooling"] not in POOLINGS:
        raise ToolError(f"{path}: pooling {m['pooling']!r} is not one of {', '.join(POOLINGS)}")
    if m["dtype"] not in DEFAULT_THRESHOLD:
        raise ToolError(f"{path}: dtype {m['dtype']!r} is not one of {', '.join(DEFAULT_THRESHOLD)}")
    if not isinstance(m["layers"], int) or m["layers"] < 1:
        raise ToolError(f"{path}: layers must be a positive integer, not {m['layers']!r}")
    ids = m["token_ids"]
    if not isinstance(ids, list) or not isinstance(m["texts"], list) or len(ids) != len(m["texts"]):
        raise ToolError(f"{path}: texts and token_ids must be lists of the same length")
    if not ids:
        raise ToolError(f"{path}: no texts")
    for i, seq in enumerate(ids):
        if not isinstance(seq, list) or not seq or not all(isinstance(t, int) and t >= 0 for t in seq):
            raise ToolError(f"{path}: token_ids[{i}] must be a non-empty list of non-negative integers")
    return m


def model_dims(model_dir, manifest):
    """The sizes that fix every intermediate's width, from config.json; its layer count must be the dump's."""
    cfg = load_json(os.path.join(model_dir, "config.json"), "model config")
    if cfg.get("model_type") != "qwen3":
        raise ToolError(f"{model_dir}/config.json: model_type {cfg.get('model_type')!r}, expected 'qwen3'")
    heads, hidden = cfg["num_attention_heads"], cfg["hidden_size"]
    head_dim = cfg.get("head_dim") or hidden // heads
    dims = {"layers": cfg["num_hidden_layers"], "hidden": hidden, "q_dim": heads * head_dim,
            "kv_dim": cfg["num_key_value_heads"] * head_dim, "intermediate": cfg["intermediate_size"],
            "vocab": cfg["vocab_size"]}
    if dims["layers"] != manifest["layers"]:
        raise ToolError(f"the dump has {manifest['layers']} layers but {model_dir}/config.json has {dims['layers']}: "
                        "not the same model")
    return dims


def cached_snapshot(repo_id):
    """The local snapshot of a hub id in the Hugging Face cache (where embedserve downloads too), or None."""
    try:
        from huggingface_hub import snapshot_download
        return snapshot_download(repo_id, local_files_only=True)
    except Exception:  # not installed, not cached, not a hub id: the caller reports
        return None


def resolve_model_dir(args, manifest):
    """--model, else the manifest's model: a local directory, or a hub id found in the Hugging Face cache."""
    model = args.model or manifest.get("model")
    if not model:
        raise ToolError("no --model given and the manifest names none")
    if not args.model and not os.path.isdir(model) and model.count("/") == 1:
        model = cached_snapshot(model) or model
    if not os.path.isfile(os.path.join(model, "config.json")):
        hint = "" if args.model else " (the manifest's model; pass --model MODEL_DIR)"
        raise ToolError(f"{model} is not a model directory with a config.json{hint}")
    return model


# ------------------------------------------------------------------------------------------- comparison

def load_ours(path):
    """(array, None) from a .npy file, memory-mapped (only its header is read until it is compared), or
    (None, why) when it is missing or unreadable."""
    if not os.path.exists(path):
        return None, "missing"
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False), None
    except (OSError, ValueError) as e:
        return None, f"unreadable: {e}"


def errors(ours, ref):
    """(relative error, max abs error) in float64; NaN or inf in ours gives a non-finite result."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    diff = ours - ref
    norm_ref, norm_diff = float(np.linalg.norm(ref)), float(np.linalg.norm(diff))
    max_abs = float(np.max(np.abs(diff))) if diff.size else 0.0
    if norm_ref == 0.0:
        rel = 0.0 if norm_diff == 0.0 else math.inf
    else:
        rel = norm_diff / norm_ref
    if not np.all(np.isfinite(ours)):
        rel = math.nan
    return rel, max_abs


class TextComparison:
    """The entries of one text: each (layer, name) starts as missing/bad/pending from the dump's file and
    becomes ok/exceeds once transformers' tensor for it arrives (see observe)."""

    def __init__(self, dump_dir, index, num_tokens, dims, pooling, threshold):
        self.index, self.num_tokens, self.dims, self.pooling, self.threshold = (index, num_tokens, dims, pooling,
                                                                                threshold)
        self.dir = text_dir(dump_dir, index)
        self.entries, self.ours = {}, {}
        for layer, name in forward_order(dims["layers"]):
            self._check_file(layer, name)

    def _check_file(self, layer, name):
        fname = file_name(layer, name)
        path = os.path.join(self.dir, fname)
        want = expected_shape(layer, name, self.dims, self.pooling, self.num_tokens)
        entry = {"layer": layer, "tag": layer_tag(layer, name), "name": name,
                 "file": os.path.join(os.path.basename(self.dir), fname), "expected_shape": list(want),
                 "rel": None, "max_abs": None}
        ours, why = load_ours(path)
        if ours is None:
            entry.update(status="missing" if why == "missing" else "bad", message=why)
        elif tuple(ours.shape) != want:
            entry.update(status="bad", shape=list(ours.shape),
                         message=f"{path}: shape {list(ours.shape)}, expected {list(want)}")
        elif ours.dtype.kind != "f":
            entry.update(status="bad", shape=list(ours.shape), message=f"{path}: dtype {ours.dtype}, expected float32")
        else:
            entry.update(status="pending", shape=list(ours.shape))
            self.ours[(layer, name)] = ours
        self.entries[(layer, name)] = entry

    def observe(self, layer, name, ref_full):
        """transformers' [T, cols] float32 tensor for (layer, name): compare the dump's rows with it."""
        entry = self.entries[(layer, name)]
        if entry["status"] != "pending":
            return
        ref = ref_full[reference_rows(layer, name, self.dims["layers"], self.pooling, self.num_tokens)]
        ours = np.array(self.ours.pop((layer, name)))
        if ref.shape != ours.shape:  # transformers disagreeing with config.json: the hooks are wrong, not the dump
            raise ToolError(f"transformers gave {list(ref.shape)} for {entry['file']}, config.json implies "
                            f"{list(ours.shape)}")
        rel, max_abs = errors(ours, ref)
        entry.update(rel=rel, max_abs=max_abs, status="ok" if rel <= self.threshold else "exceeds")

    def finish(self, compared):
        """Entries in forward order; those still pending were checked for shape only (--check-only)."""
        out = [self.entries[k] for k in forward_order(self.dims["layers"])]
        if compared:
            stale = [e["file"] for e in out if e["status"] == "pending"]
            if stale:
                raise ToolError(f"transformers produced no tensor for {stale[0]} (and {len(stale) - 1} more): "
                                "this transformers version calls its modules differently than the hooks expect")
        else:
            for e in out:
                if e["status"] == "pending":
                    e["status"] = "shape_ok"
        return out


def first_divergence(entries):
    for e in entries:
        if e["status"] in ("exceeds", "bad"):
            return e
    return None


# ------------------------------------------------------------------------------- transformers reference

class Reference:
    """transformers' Qwen3Model with hooks that hand every intermediate of one forward pass to a callback."""

    def __init__(self, model_dir, torch_dtype, device, attn_implementation):
        try:
            import torch
            import transformers
            from transformers.models.qwen3 import modeling_qwen3
        except ImportError as e:
            raise ToolError(f"transformers' reference needs torch and transformers ({e}); pip install torch "
                            "transformers, or run with --check-only") from None
        torch.backends.cuda.matmul.allow_tf32 = False  # TF32 would round matmul inputs to 10 mantissa bits
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
        transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars would interleave with the table
        self.torch, self.rope_module = torch, modeling_qwen3
        self.device = device
        dtype = getattr(torch, torch_dtype)
        kwargs = {"attn_implementation": attn_implementation}
        try:
            model = transformers.AutoModel.from_pretrained(model_dir, dtype=dtype, **kwargs)
        except TypeError:  # transformers 4.x spells it torch_dtype
            model = transformers.AutoModel.from_pretrained(model_dir, torch_dtype=dtype, **kwargs)
        if not isinstance(model, modeling_qwen3.Qwen3Model):
            raise ToolError(f"{model_dir} loads as {type(model).__name__}, not Qwen3Model")
        self.model = model.to(device).eval()
        self.description = (f"transformers {transformers.__version__} Qwen3Model {torch_dtype} on {device}, "
                            f"attention {attn_implementation}, TF32 off (torch {torch.__version__})")

    @staticmethod
    def _rows(t):
        """[1, T, cols] (or [T, cols]) torch tensor -> float32 numpy [T, cols]."""
        t = t.detach()
        if t.dim() == 3:
            t = t[0]
        return t.float().cpu().numpy()

    def _hooks(self, emit):
        """Registers the forward hooks; returns their handles."""
        m, rows, handles = self.model, self._rows, []

        def on(module, fn):
            handles.append(module.register_forward_hook(fn))

        def out_of(layer, name):
            return lambda mod, args, out: emit(layer, name, rows(out[0] if isinstance(out, tuple) else out))

        def in_of(layer, name):
            return lambda mod, args, out: emit(layer, name, rows(args[0]))

        on(m.embed_tokens, out_of(-1, "inp_embd"))
        for layer, block in enumerate(m.layers):
            attn, mlp, gate = block.self_attn, block.mlp, {}
            on(block.input_layernorm, out_of(layer, "attn_norm"))
            on(attn.v_proj, out_of(layer, "Vcur"))
            on(attn.o_proj, in_of(layer, "kqv_out"))
            on(attn.o_proj, out_of(layer, "attn_out"))
            on(block.post_attention_layernorm, in_of(layer, "ffn_inp"))
            on(block.post_attention_layernorm, out_of(layer, "ffn_norm"))
            on(mlp.gate_proj, lambda mod, args, out, g=gate: g.__setitem__("gate", rows(out)))
            on(mlp.up_proj, lambda mod, args, out, g=gate, l=layer:
               emit(l, "ffn_gate_up", np.concatenate([g.pop("gate"), rows(out)], axis=1)))
            on(mlp.down_proj, in_of(layer, "ffn_act"))
            on(mlp.down_proj, out_of(layer, "ffn_out"))
            on(block, out_of(layer, "l_out"))
        on(m.norm, out_of(-1, "result_norm"))
        return handles

    @contextlib.contextmanager
    def _recording_rope(self, emit):
        """Wraps modeling_qwen3.apply_rotary_pos_emb for the run: its n-th call is layer n's q and k after
        q_norm/k_norm and RoPE, [1, heads, T, head_dim] -> [T, heads * head_dim]."""
        original, calls = self.rope_module.apply_rotary_pos_emb, []

        def flat(t):
            return self._rows(t.transpose(1, 2).reshape(t.shape[0], t.shape[2], -1))

        def recording(q, k, *args, **kwargs):
            q_embed, k_embed = original(q, k, *args, **kwargs)
            layer = len(calls)
            calls.append(layer)
            emit(layer, "Kcur", flat(k_embed))
            emit(layer, "Qcur", flat(q_embed))
            return q_embed, k_embed

        self.rope_module.apply_rotary_pos_emb = recording
        try:
            yield calls
        finally:
            self.rope_module.apply_rotary_pos_emb = original

    def run(self, token_ids, emit):
        """One forward pass of one sequence (batch of one, positions 0..T-1, no padding); emit(layer, name,
        float32 [T, cols]) for every intermediate."""
        torch = self.torch
        ids = torch.tensor([token_ids], dtype=torch.long, device=self.device)
        handles = self._hooks(emit)
        try:
            with self._recording_rope(emit) as calls, torch.no_grad():
                self.model(input_ids=ids)
        finally:
            for h in handles:
                h.remove()
        if len(calls) != len(self.model.layers):
            raise ToolError(f"apply_rotary_pos_emb ran {len(calls)} times for {len(self.model.layers)} layers: "
                            "Qcur/Kcur cannot be attributed to layers")


# ------------------------------------------------------------------------------------------------ output

def fmt(x):
    if x is None:
        return "-"
    return f"{x:.2e}"


def table_lines(index, text, num_tokens, pooling, entries, threshold):
    lines = [f"text {index} ({num_tokens} token{'s' if num_tokens != 1 else ''}, pooling {pooling}): {text[:60]!r}",
             f"  {'layer':<5} {'name':<12} {'shape':>11}  {'rel err':>9}  {'max abs':>9}"]
    for e in entries:
        shape = "x".join(map(str, e.get("shape") or e["expected_shape"]))
        status = {"ok": "", "shape_ok": "shape ok", "exceeds": f"> {threshold:g}"}.get(e["status"], e["status"])
        if e["status"] == "bad":
            status = "BAD: " + e["message"]
        lines.append(f"  {e['tag']:<5} {e['name']:<12} {shape:>11}  {fmt(e['rel']):>9}  {fmt(e['max_abs']):>9}  "
                     f"{status}".rstrip())
    return lines


def describe(e, threshold):
    where = f"layer {e['tag']} {e['name']} ({e['file']})"
    if e["status"] == "bad":
        return f"{where}: {e['message']}"
    return f"{where}: rel err {fmt(e['rel'])} > {threshold:g} (max abs {fmt(e['max_abs'])})"


def json_safe(x):
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [json_safe(v) for v in x]
    return x


def write_json(path, report):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(json_safe(report), f, indent=1, ensure_ascii=False, allow_nan=False)
        f.write("\n")


# -------------------------------------------------------------------------------------------------- main

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dump", required=True, help="the directory embedserve embed --dump-intermediates wrote")
    p.add_argument("--model", help="the Hugging Face checkpoint directory (config.json + safetensors); default: the "
                                   "manifest's model, a directory or a hub id in the Hugging Face cache")
    p.add_argument("--threshold", type=float, help=THRESHOLD_HELP)
    p.add_argument("--torch-dtype", choices=["float32", "bfloat16"], default="float32",
                   help="dtype transformers runs in (default float32: the exact reference, also for bf16 dumps)")
    p.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda")
    p.add_argument("--attn-implementation", choices=["eager", "sdpa"], default="eager",
                   help="transformers' attention (default eager: plain matmul, softmax in f32, matmul)")
    p.add_argument("--json", metavar="OUT", help="also write the tables and the verdict to OUT as JSON")
    p.add_argument("--check-only", action="store_true",
                   help="only check that every file is there with the shape config.json implies (no torch)")
    return p.parse_args(argv)


def compare_dump(args, manifest, dims, threshold, out):
    """Builds, runs and prints every text's comparison; returns the report (JSON-ready)."""
    reference = None if args.check_only else Reference(args.model_dir, args.torch_dtype, args.device,
                                                       args.attn_implementation)
    print(f"dump {args.dump}: {len(manifest['texts'])} texts, {dims['layers']} layers, dtype {manifest['dtype']}, "
          f"pooling {manifest['pooling']}, threshold {threshold:g}", file=out)
    print("reference: " + (reference.description if reference else "none (--check-only: files and shapes only)"),
          file=out)
    texts = []
    for i, (text, ids) in enumerate(zip(manifest["texts"], manifest["token_ids"])):
        if max(ids) >= dims["vocab"]:
            raise ToolError(f"text {i}: token id {max(ids)} is not below vocab_size {dims['vocab']}")
        cmp = TextComparison(args.dump, i, len(ids), dims, manifest["pooling"], threshold)
        if not os.path.isdir(cmp.dir):
            print(f"text {i}: {cmp.dir} does not exist: every intermediate is missing", file=out)
        elif reference:
            reference.run(ids, cmp.observe)
        entries = cmp.finish(compared=reference is not None)
        first = first_divergence(entries)
        print("\n".join(table_lines(i, str(text), len(ids), manifest["pooling"], entries, threshold)), file=out)
        print(f"  first divergence: {describe(first, threshold) if first else 'none'}", file=out)
        texts.append({"index": i, "num_tokens": len(ids), "entries": entries, "first_divergence": first})
    return {"dump": args.dump, "model": args.model_dir, "reference": reference.description if reference else None,
            "dtype": manifest["dtype"], "pooling": manifest["pooling"], "threshold": threshold, "texts": texts}


def verdict(report, out):
    """Prints the summary line; returns the exit status."""
    entries = [e for t in report["texts"] for e in t["entries"]]
    missing = [e for e in entries if e["status"] == "missing"]
    if missing:
        print(f"WARNING: {len(missing)} intermediate files missing (first: {missing[0]['file']}); "
              "they were not compared", file=out)
    firsts = [(t["index"], t["first_divergence"]) for t in report["texts"] if t["first_divergence"]]
    if firsts:
        order = {k: n for n, k in enumerate(forward_order(report["layers"]))}
        index, first = min(firsts, key=lambda f: (order[(f[1]["layer"], f[1]["name"])], f[0]))
        report["first_divergence"] = dict(first, text=index)
        print(f"FAIL: first divergence at {describe(first, report['threshold'])}, text {index} "
              f"({len(firsts)} of {len(report['texts'])} texts diverge)", file=out)
        return EXIT_DIVERGED
    report["first_divergence"] = None
    if len(missing) == len(entries):
        raise ToolError("every intermediate file is missing: nothing was compared (is --dump the right directory?)")
    checked = len(entries) - len(missing)
    what = "have the right shape" if report["reference"] is None else f"are within {report['threshold']:g}"
    print(f"OK: all {checked} intermediates {what}", file=out)
    return EXIT_OK


def main(argv=None, out=None):
    out = out or sys.stdout
    args = parse_args(argv)
    try:
        manifest = load_manifest(args.dump)
        args.model_dir = resolve_model_dir(args, manifest)
        dims = model_dims(args.model_dir, manifest)
        threshold = args.threshold if args.threshold is not None else DEFAULT_THRESHOLD[manifest["dtype"]]
        report = compare_dump(args, manifest, dims, threshold, out)
        report["layers"] = dims["layers"]
        status = verdict(report, out)
        if args.json:
            write_json(args.json, report)
        return status
    except ToolError as e:
        print(f"compare_intermediates: error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
