"""bench/server/load's native load generator (embedserve_http_load) against the tiny-model server: it measures,
it counts failures, and it replays exactly the workload bench/server/http_load.py defines."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from helpers import MODEL_NAME
from server_process import ROOT, free_port

HTTP_LOAD_PY = ROOT / "bench" / "server" / "http_load.py"
SHARED_KEYS = {"tool", "workload", "mode", "connections", "threads", "rate", "seconds", "requests", "errors",
               "errors_by_kind", "requests_per_s", "inputs", "tokens", "tokens_per_s", "p50_ms", "p90_ms", "p99_ms",
               "p999_ms", "max_ms", "mean_ms"}


@pytest.fixture(scope="module")
def load_tool(binary) -> pathlib.Path:
    """$EMBEDSERVE_HTTP_LOAD_BIN, else the build's bench/server/load/embedserve_http_load beside embedserve."""
    path = pathlib.Path(os.environ.get("EMBEDSERVE_HTTP_LOAD_BIN",
                                       binary.parent / "bench" / "server" / "load" / "embedserve_http_load"))
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: build it with -DEMBEDSERVE_BENCH=ON "
                                "(cmake --build build --target embedserve_http_load)")
    return path


def write_bodies(folder: pathlib.Path, workload: str, *args: str, encoding: str = "base64") -> pathlib.Path:
    out = folder / f"{workload}.req"
    subprocess.run([sys.executable, str(HTTP_LOAD_PY), "--model", MODEL_NAME, "--encoding-format", encoding,
                    workload, "--write-bodies", str(out), *args], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def query_bodies(tmp_path_factory) -> pathlib.Path:
    """200 requests of the queries workload (15-word queries, base64), written once for the module's tests."""
    return write_bodies(tmp_path_factory.mktemp("http_load"), "queries", "--count", "200")


def run_native(tool, url: str, *args: str, expect_rc: int = 0) -> dict:
    proc = subprocess.run([str(tool), "--url", url, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == expect_rc, f"exit {proc.returncode}, wanted {expect_rc}:\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, f"expected one JSON line on stdout:\n{proc.stdout}"
    result = json.loads(lines[0])
    result["stderr"] = proc.stderr
    return result


def test_queries_measure_with_no_errors_and_sensible_percentiles(server, load_tool, query_bodies):
    r = run_native(load_tool, server.base_url, "--bodies", str(query_bodies), "--connections", "8", "--threads", "2",
                   "--warmup", "0.2", "--duration", "1")
    assert SHARED_KEYS <= set(r), r
    assert r["errors"] == 0 and r["errors_by_kind"] == {}, r
    assert r["requests"] > 0 and r["inputs"] == r["requests"], r
    assert r["mode"] == "closed" and r["connections"] == 8 and r["threads"] == 2, r
    assert r["requests_per_s"] == pytest.approx(r["requests"] / r["seconds"], rel=1e-3), r
    # 15 words of the workload's list are at least 15 tokens, plus the end-of-text token.
    assert r["tokens"] >= 16 * r["requests"], r
    assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["p999_ms"] <= r["max_ms"] < 5000, r
    assert r["p50_ms"] <= r["mean_ms"] * 3, r


def test_queries_of_n_tokens_are_exactly_n_tokens_long(server, load_tool, tmp_path):
    """`queries --tokens N` (the issue's 16-token query): every query the server tokenises is N tokens, the EOS
    included, through both tools — the tiny model serves Qwen3's real tokenizer."""
    for n in (16, 2, 33):
        bodies = write_bodies(tmp_path, "queries", "--count", "60", "--tokens", str(n))
        r = run_native(load_tool, server.base_url, "--bodies", str(bodies), "--once", "--connections", "3")
        assert r["errors"] == 0 and r["requests"] == 60, r
        assert r["tokens"] == n * 60, r
    proc = subprocess.run([sys.executable, str(HTTP_LOAD_PY), "--url", server.base_url, "--model", MODEL_NAME,
                           "queries", "--tokens", "16", "--connections", "2", "--seconds", "0.5"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["errors"] == 0 and r["requests"] > 0 and r["tokens"] == 16 * r["requests"], r
    bad = subprocess.run([sys.executable, str(HTTP_LOAD_PY), "queries", "--tokens", "1"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "--tokens must be at least 2" in bad.stderr, bad.stderr


def test_replays_the_python_tools_bulk_workload_exactly(start_server, load_tool, tmp_path):
    """Float vectors, each request once in order: the same tokens as http_load.py's own run of the workload, and
    the same keys in both tools' JSON lines."""
    srv = start_server()
    workload = ["--texts", "48", "--per-request", "16"]
    bodies = write_bodies(tmp_path, "bulk", *workload, encoding="float")
    native = run_native(load_tool, srv.base_url, "--bodies", str(bodies), "--once", "--connections", "2")
    assert native["mode"] == "once" and native["errors"] == 0, native
    assert (native["requests"], native["inputs"]) == (3, 48), native
    proc = subprocess.run([sys.executable, str(HTTP_LOAD_PY), "--url", srv.base_url, "--model", MODEL_NAME,
                           "--encoding-format", "float", "bulk", *workload, "--concurrency", "2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    python = json.loads(proc.stdout)
    assert set(python) == set(native) - {"stderr"}, (python, native)
    assert python["tokens"] == native["tokens"] > 48 * 16, (python, native)
    assert python["inputs"] == native["inputs"], (python, native)


def test_every_refused_request_is_counted_by_status(start_server, load_tool, query_bodies):
    srv = start_server("--api-key", "right-key")
    wrong = run_native(load_tool, srv.base_url, "--bodies", str(query_bodies), "--api-key", "wrong-key",
                       "--connections", "4", "--threads", "1", "--warmup", "0", "--duration", "0.5", expect_rc=1)
    assert wrong["requests"] == 0 and wrong["errors"] > 0, wrong
    assert wrong["errors_by_kind"] == {"401": wrong["errors"]}, wrong
    assert "401" in wrong["stderr"] and "invalid_api_key" in wrong["stderr"], wrong["stderr"]
    right = run_native(load_tool, srv.base_url, "--bodies", str(query_bodies), "--api-key", "right-key",
                       "--connections", "4", "--threads", "1", "--warmup", "0", "--duration", "0.5")
    assert right["errors"] == 0 and right["requests"] > 0, right


def test_a_down_server_is_an_error_not_a_hang(load_tool, query_bodies):
    r = run_native(load_tool, f"http://127.0.0.1:{free_port()}", "--bodies", str(query_bodies), "--connections", "2",
                   "--warmup", "0", "--duration", "0.3", expect_rc=1)
    assert r["requests"] == 0 and r["errors_by_kind"].get("connect", 0) > 0, r


def test_open_loop_sends_at_the_rate_asked(server, load_tool, query_bodies):
    r = run_native(load_tool, server.base_url, "--bodies", str(query_bodies), "--rate", "200", "--connections", "4",
                   "--threads", "2", "--warmup", "0.2", "--duration", "1")
    assert r["mode"] == "open" and r["rate"] == 200 and r["errors"] == 0, r
    # 200 slots in the measured second, give or take the answers that straddle its two edges on a busy machine; a
    # closed loop would answer thousands, a schedule off by a factor of two 100 or 400.
    assert 150 <= r["requests"] <= 230, r


def test_batch_stats_reports_the_engine_calls_between_two_metrics_pages(start_server, load_tool, query_bodies,
                                                                        tmp_path):
    """bench/server/batch_stats.py (what serve_variants.sh and the GPU scripts print beside a load run): four
    requests of two texts, one after another on a server of their own, are four engine calls of two sequences
    holding the tokens the answers' usage counts; with the load tool's JSON line it puts that tool's figures first."""
    srv = start_server()
    pages = [tmp_path / "before.txt", tmp_path / "after.txt"]
    pages[0].write_bytes(srv.request("GET", "/metrics")[2])
    tokens = 0
    for i in range(4):
        status, _, body = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": [f"alpha beta {i}", "gamma"]})
        assert status == 200, body
        tokens += body["usage"]["prompt_tokens"]
    pages[1].write_bytes(srv.request("GET", "/metrics")[2])
    stats = [sys.executable, str(ROOT / "bench" / "server" / "batch_stats.py"), *map(str, pages)]
    line = subprocess.run(stats, capture_output=True, text=True, check=True).stdout.strip()
    assert line.startswith(f"engine calls 4: 2.0 sequences and {tokens / 4:.0f} tokens each, "), (line, tokens)

    load = run_native(load_tool, srv.base_url, "--bodies", str(query_bodies), "--connections", "2", "--threads", "1",
                      "--warmup", "0", "--duration", "0.3")
    (tmp_path / "load.json").write_text(json.dumps(load) + "\n")
    pages[0].write_bytes(pages[1].read_bytes())
    pages[1].write_bytes(srv.request("GET", "/metrics")[2])
    line = subprocess.run([*stats, str(tmp_path / "load.json")], capture_output=True, text=True, check=True).stdout
    assert line.startswith(f"{load['requests_per_s']:,.0f} req/s, "), line
    assert f", {load['errors']} errors | engine calls " in line, line


def test_serve_variants_measures_each_variant_and_refuses_a_taken_port(binary, tiny_model, load_tool, server):
    """bench/server/serve_variants.sh: one line per variant and round with the load tool's figures and the engine's
    calls, the variant's environment and flags applied (a flag the server refuses is that run's failure, not a
    measurement), and nothing measured on a port another server already answers on."""
    script = ["bash", str(ROOT / "bench" / "server" / "serve_variants.sh"), "--model", str(tiny_model), "--device",
              "cpu", "--workloads", "query", "--rounds", "1", "--seconds", "0.5", "--load", str(load_tool)]
    variants = [f"plain={binary} --threads 1", f"env=EMBEDSERVE_UNUSED=1 {binary} --threads 1 --busy-poll-us 0",
                f"refused={binary} --no-such-flag"]
    proc = subprocess.run([*script, "--port", str(free_port()), *variants], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 3, (proc.returncode, proc.stdout, proc.stderr)
    for label, line in zip(("plain", "env"), lines):
        assert line.startswith(f"round 1 {label} query: "), line
        assert " req/s, " in line and ", 0 errors | engine calls " in line and "1.0 sequences" in line, line
    assert lines[2].startswith("round 1 refused query: the server did not come up: "), lines[2]
    assert "--no-such-flag" in lines[2], lines[2]

    taken = subprocess.run([*script, "--port", str(server.port), variants[0]], capture_output=True, text=True,
                           timeout=60, cwd=ROOT)
    assert taken.returncode == 1, taken.stdout
    assert f"something already answers on port {server.port}" in taken.stdout, taken.stdout
