"""Tests tools/compare_intermediates.py without the C++ side.

A tiny random model (tools/make_random_model.py, preset tiny-f32-sharded: 2 layers, MQA 4:1) gets a dump in
exactly the format of `embedserve embed --dump-intermediates`, written here by a step-by-step forward pass
over transformers' own modules that gathers the pooled row on the last layer as src/model/qwen3.cc does. It is
independent of the tool's hooks and row selection, so a correct dump comparing at ~0 proves both. Then the
dump is corrupted (a scaled tensor, a missing file, a wrong shape) and the tool must say exactly that.

The comparisons need torch and transformers and skip without them; the dump-format checks (--check-only,
--help, a missing manifest) need numpy only and always run.
"""

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "compare_intermediates.py")
sys.path.insert(0, os.path.join(REPO, "tools"))
import compare_intermediates  # noqa: E402
import make_random_model  # noqa: E402

PRESET = "tiny-f32-sharded"
ARGS = dict(make_random_model.DEFAULTS, **make_random_model.PRESETS[PRESET])
LAYERS = ARGS["layers"]
# A 3-token text, a 1-token text (the pooled row is the only row) and a 17-token one.
TOKEN_IDS = [[9707, 1879, 151643], [151643], [40, 1079, 264, 1293, 1467, 11, 323, 419, 374, 279, 2086, 13, 198,
                                             96155, 100, 5, 151643]]
NAMES = ("attn_norm", "Kcur", "Vcur", "Qcur", "kqv_out", "attn_out", "ffn_inp", "ffn_norm", "ffn_gate_up",
         "ffn_act", "ffn_out", "l_out")

try:
    import torch
    import transformers  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False
needs_torch = pytest.mark.skipif(
    not HAVE_TORCH, reason="torch and transformers are not installed (not in scripts/setup.sh: PyPI's torch brings "
                           "~3 GB of CUDA wheels); pip install torch transformers to run these")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    subprocess.run([sys.executable, os.path.join(REPO, "tools", "make_random_model.py"), "--preset", PRESET,
                    "--out", str(out)], check=True, capture_output=True)
    return str(out)


def run_tool(*argv):
    """(exit status, stdout) of the tool run in this process."""
    out = io.StringIO()
    status = compare_intermediates.main([str(a) for a in argv], out=out)
    return status, out.getvalue()


def write_manifest(dump, model, token_ids, pooling, dtype="f32"):
    os.makedirs(dump, exist_ok=True)
    with open(os.path.join(dump, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump({"model": model, "texts": [f"text {i}" for i in range(len(token_ids))], "token_ids": token_ids,
                   "pooling": pooling, "dtype": dtype, "layers": LAYERS}, f)


def save(dump, index, tag, name, array):
    d = os.path.join(dump, f"text-{index:05d}")
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, f"{tag}-{name}.npy"), np.ascontiguousarray(array, dtype=np.float32))


def entry(report, text, tag, name):
    (e,) = [e for e in report["texts"][text]["entries"] if e["tag"] == tag and e["name"] == name]
    return e


# ------------------------------------------------------------------------------- no torch needed

def expected_widths():
    q, kv, inter, hidden = ARGS["heads"] * ARGS["head_dim"], ARGS["kv_heads"] * ARGS["head_dim"], ARGS[
        "intermediate"], ARGS["hidden"]
    return {"attn_norm": hidden, "Kcur": kv, "Vcur": kv, "Qcur": q, "kqv_out": q, "attn_out": hidden,
            "ffn_inp": hidden, "ffn_norm": hidden, "ffn_gate_up": 2 * inter, "ffn_act": inter, "ffn_out": hidden,
            "l_out": hidden}


def write_shape_only_dump(dump, model, token_ids):
    """Random tensors of the shapes embedserve writes under last-token pooling."""
    rng = np.random.default_rng(0)
    write_manifest(dump, model, token_ids, "lasttoken")
    widths = expected_widths()
    for i, ids in enumerate(token_ids):
        save(dump, i, "in", "inp_embd", rng.standard_normal((len(ids), ARGS["hidden"])))
        for layer in range(LAYERS):
            for n, name in enumerate(NAMES):
                pooled = layer == LAYERS - 1 and n >= NAMES.index("Qcur")
                save(dump, i, f"{layer:02d}", name, rng.standard_normal((1 if pooled else len(ids), widths[name])))
        save(dump, i, "out", "result_norm", rng.standard_normal((1, ARGS["hidden"])))


def test_missing_manifest_is_a_one_line_error(tmp_path, model_dir, capsys):
    status, _ = run_tool("--dump", tmp_path / "nowhere", "--model", model_dir)
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert "\n" not in err and "no manifest" in err and "nowhere" in err and "manifest.json" in err


def test_help_explains_the_default_thresholds():
    r = subprocess.run([sys.executable, TOOL, "--help"], capture_output=True, text=True, check=True)
    text = " ".join(r.stdout.split())
    assert "Default 1e-4 for f32 dumps" in text and "Default 3e-2 for bf16 dumps" in text


def test_check_only_accepts_a_well_shaped_dump(tmp_path, model_dir):
    write_shape_only_dump(tmp_path / "dump", model_dir, TOKEN_IDS)
    status, out = run_tool("--dump", tmp_path / "dump", "--check-only")  # the manifest names the model
    assert status == 0, out
    assert out.strip().endswith(f"OK: all {len(TOKEN_IDS) * (2 + LAYERS * len(NAMES))} intermediates have the "
                                "right shape")


def test_check_only_reports_a_wrong_shape_and_a_missing_file(tmp_path, model_dir):
    dump = tmp_path / "dump"
    write_shape_only_dump(dump, model_dir, TOKEN_IDS)
    os.remove(dump / "text-00000" / "00-Vcur.npy")
    save(dump, 2, "01", "Qcur", np.zeros((17, 32)))  # all rows where only the pooled one belongs
    status, out = run_tool("--dump", dump, "--model", model_dir, "--check-only", "--json", tmp_path / "r.json")
    assert status == 1
    lines = out.splitlines()
    (bad,) = [l for l in lines if "01    Qcur" in l and "BAD" in l]
    assert "text-00002/01-Qcur.npy: shape [17, 32], expected [1, 32]" in bad
    assert any("00    Vcur" in l and l.rstrip().endswith("missing") for l in lines)
    assert "WARNING: 1 intermediate files missing (first: text-00000/00-Vcur.npy)" in out
    assert lines[-1].startswith("FAIL: first divergence at layer 01 Qcur (text-00002/01-Qcur.npy)")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["first_divergence"]["text"] == 2 and report["first_divergence"]["name"] == "Qcur"
    assert entry(report, 0, "00", "Vcur")["status"] == "missing"


def test_layer_count_must_match_the_model(tmp_path, model_dir, capsys):
    dump = tmp_path / "dump"
    write_shape_only_dump(dump, model_dir, TOKEN_IDS)
    manifest = json.loads((dump / "manifest.json").read_text())
    manifest["layers"] = 28
    (dump / "manifest.json").write_text(json.dumps(manifest))
    status, _ = run_tool("--dump", dump, "--check-only")
    assert status == 2
    assert "the dump has 28 layers but" in capsys.readouterr().err


# ------------------------------------------------------------------------ against transformers

def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def step_by_step(model, ids, pooling):
    """{(tag, name): float32 [rows, cols]} of one sequence, computed op by op over the model's modules the way
    src/model/qwen3.cc orders them: on the last layer under last-token/CLS pooling only the pooled row goes on
    after k/v. Attention and RoPE are written out here (per head, explicit causal mask)."""
    out, T = {}, len(ids)
    x = model.embed_tokens(torch.tensor(ids))                                   # [T, hidden]
    out[("in", "inp_embd")] = x
    cos, sin = model.rotary_emb(x[None], torch.arange(T)[None])                 # [1, T, head_dim]
    cos, sin = cos[0, :, None, :], sin[0, :, None, :]                            # [T, 1, head_dim]
    for layer, block in enumerate(model.layers):
        tag, a, mlp = f"{layer:02d}", block.self_attn, block.mlp
        hd, heads, kv_heads = a.head_dim, a.config.num_attention_heads, a.config.num_key_value_heads
        h = block.input_layernorm(x)
        k = a.k_norm(a.k_proj(h).view(T, kv_heads, hd))
        k = k * cos + rotate_half(k) * sin
        v = a.v_proj(h)
        out.update({(tag, "attn_norm"): h, (tag, "Kcur"): k.reshape(T, -1), (tag, "Vcur"): v})
        rows = torch.arange(T)
        if layer == len(model.layers) - 1 and pooling != "mean":
            rows = rows[-1:] if pooling == "lasttoken" else rows[:1]
            x, h = x[rows], h[rows]
        q = a.q_norm(a.q_proj(h).view(len(rows), heads, hd))
        q = q * cos[rows] + rotate_half(q) * sin[rows]
        v = v.view(T, kv_heads, hd)
        attn = torch.empty(len(rows), heads, hd)
        for head in range(heads):
            kv = head // (heads // kv_heads)
            s = q[:, head] @ k[:, kv].T * hd ** -0.5                               # [m, T]
            s = s.masked_fill(torch.arange(T)[None, :] > rows[:, None], float("-inf"))
            attn[:, head] = torch.softmax(s, dim=-1) @ v[:, kv]
        attn = attn.reshape(len(rows), -1)
        attn_out = a.o_proj(attn)
        x = x + attn_out
        h = block.post_attention_layernorm(x)
        gate, up = mlp.gate_proj(h), mlp.up_proj(h)
        act = mlp.act_fn(gate) * up
        ffn_out = mlp.down_proj(act)
        out.update({(tag, "Qcur"): q.reshape(len(rows), -1), (tag, "kqv_out"): attn, (tag, "attn_out"): attn_out,
                    (tag, "ffn_inp"): x, (tag, "ffn_norm"): h, (tag, "ffn_gate_up"): torch.cat([gate, up], dim=1),
                    (tag, "ffn_act"): act, (tag, "ffn_out"): ffn_out})
        x = x + ffn_out
        out[(tag, "l_out")] = x
    out[("out", "result_norm")] = model.norm(x)
    return {key: t.detach().float().numpy() for key, t in out.items()}


def write_transformers_dump(dump, model_dir, pooling):
    from transformers import AutoModel
    model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    write_manifest(dump, model_dir, TOKEN_IDS, pooling)
    with torch.no_grad():
        for i, ids in enumerate(TOKEN_IDS):
            for (tag, name), array in step_by_step(model, ids, pooling).items():
                save(dump, i, tag, name, array)


@pytest.fixture(scope="module")
def dumps(tmp_path_factory, model_dir):
    """pooling -> a correct dump of TOKEN_IDS, written once; tests corrupt copies."""
    if not HAVE_TORCH:
        pytest.skip("needs torch")
    root = tmp_path_factory.mktemp("dumps")
    for pooling in ("lasttoken", "cls", "mean"):
        write_transformers_dump(str(root / pooling), model_dir, pooling)
    return root


def copy_dump(dumps, pooling, tmp_path):
    shutil.copytree(dumps / pooling, tmp_path / "dump")
    return tmp_path / "dump"


@needs_torch
@pytest.mark.parametrize("pooling", ["lasttoken", "cls", "mean"])
def test_a_correct_dump_compares_at_zero(dumps, model_dir, tmp_path, pooling):
    status, out = run_tool("--dump", dumps / pooling, "--model", model_dir, "--json", tmp_path / "r.json")
    assert status == 0, out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["threshold"] == 1e-4 and report["first_divergence"] is None
    for t, ids in zip(report["texts"], TOKEN_IDS):
        keys = [(e["tag"], e["name"]) for e in t["entries"]]
        assert keys == [("in", "inp_embd")] + [(f"{l:02d}", n) for l in range(LAYERS) for n in NAMES] + [
            ("out", "result_norm")]
        assert all(e["status"] == "ok" for e in t["entries"])
        worst = max(t["entries"], key=lambda e: e["rel"])
        assert worst["rel"] < 1e-5, worst
        rows = 1 if pooling != "mean" else len(ids)
        assert entry(report, t["index"], "01", "ffn_out")["shape"] == [rows, ARGS["hidden"]]
        assert entry(report, t["index"], "01", "Kcur")["shape"] == [len(ids), ARGS["kv_heads"] * ARGS["head_dim"]]
    assert out.rstrip().endswith(f"OK: all {len(TOKEN_IDS) * (2 + LAYERS * len(NAMES))} intermediates are within "
                                 "0.0001")


@needs_torch
def test_a_scaled_ffn_out_is_the_first_divergence(dumps, model_dir, tmp_path):
    dump = copy_dump(dumps, "lasttoken", tmp_path)
    for name in ("01-ffn_out", "01-l_out"):  # two corrupted tensors: the earlier one is the first divergence
        path = dump / "text-00002" / f"{name}.npy"
        np.save(path, np.load(path) * np.float32(1.01))
    r = subprocess.run([sys.executable, TOOL, "--dump", dump, "--model", model_dir, "--json", tmp_path / "r.json"],
                       capture_output=True, text=True)
    assert r.returncode == 1, r.stdout + r.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    first = report["first_divergence"]
    assert (first["text"], first["layer"], first["name"]) == (2, 1, "ffn_out")
    assert abs(first["rel"] - 0.01) < 1e-4
    bad = [(t["index"], e["tag"], e["name"]) for t in report["texts"] for e in t["entries"] if e["status"] != "ok"]
    assert bad == [(2, "01", "ffn_out"), (2, "01", "l_out")]
    assert "  first divergence: layer 01 ffn_out (text-00002/01-ffn_out.npy): rel err 1.00e-02 > 0.0001" in r.stdout
    assert r.stdout.rstrip().splitlines()[-1].startswith("FAIL: first divergence at layer 01 ffn_out")


@needs_torch
def test_a_missing_file_is_reported_and_the_rest_compared(dumps, model_dir, tmp_path):
    dump = copy_dump(dumps, "lasttoken", tmp_path)
    os.remove(dump / "text-00000" / "00-Vcur.npy")
    status, out = run_tool("--dump", dump, "--model", model_dir, "--json", tmp_path / "r.json")
    assert status == 0, out
    report = json.loads((tmp_path / "r.json").read_text())
    statuses = [e["status"] for t in report["texts"] for e in t["entries"]]
    assert statuses.count("missing") == 1 and statuses.count("ok") == len(statuses) - 1
    assert entry(report, 0, "00", "Vcur")["status"] == "missing"
    assert "WARNING: 1 intermediate files missing (first: text-00000/00-Vcur.npy)" in out


@needs_torch
def test_a_wrong_shape_names_the_file_and_both_shapes(dumps, model_dir, tmp_path):
    dump = copy_dump(dumps, "cls", tmp_path)
    save(dump, 0, "00", "ffn_act", np.zeros((3, 47)))
    status, out = run_tool("--dump", dump, "--model", model_dir)
    assert status == 1
    assert "text-00000/00-ffn_act.npy: shape [3, 47], expected [3, 48]" in out
    assert out.rstrip().splitlines()[-1].startswith("FAIL: first divergence at layer 00 ffn_act")


@needs_torch
def test_nan_is_a_divergence(dumps, model_dir, tmp_path):
    dump = copy_dump(dumps, "mean", tmp_path)
    path = dump / "text-00001" / "00-kqv_out.npy"
    a = np.load(path)
    a[0, 3] = np.nan
    np.save(path, a)
    status, out = run_tool("--dump", dump, "--model", model_dir)
    assert status == 1
    assert out.rstrip().splitlines()[-1].startswith("FAIL: first divergence at layer 00 kqv_out")


@needs_torch
def test_a_bf16_dump_gets_the_bf16_threshold(dumps, model_dir, tmp_path):
    """Every tensor rounded to bf16 (what a bf16 engine stores at best): ~1e-3 off, inside 3e-2, outside 1e-4."""
    dump = copy_dump(dumps, "lasttoken", tmp_path)
    for root, _, files in os.walk(dump):
        for f in files:
            if f.endswith(".npy"):
                a = torch.from_numpy(np.load(os.path.join(root, f)))
                np.save(os.path.join(root, f), a.to(torch.bfloat16).float().numpy())
    manifest = json.loads((dump / "manifest.json").read_text())
    manifest["dtype"] = "bf16"
    (dump / "manifest.json").write_text(json.dumps(manifest))
    status, out = run_tool("--dump", dump, "--model", model_dir, "--json", tmp_path / "r.json")
    assert status == 0, out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["threshold"] == 3e-2
    assert 1e-4 < max(e["rel"] for t in report["texts"] for e in t["entries"]) < 1e-2
    status, out = run_tool("--dump", dump, "--model", model_dir, "--threshold", "1e-4")
    assert status == 1
