"""`embedserve serve` takes SGLang's launch flags: the ones it does not need are accepted with a notice."""
import http.client
import json
import os
import re
import signal
import subprocess
import time

import pytest

from helpers import MODEL_NAME
from server_process import ServerProcess, free_port, make_model


def test_sglang_launch_flags_are_accepted(start_server):
    srv = start_server("--is-embedding", "--tp", "1", "--dp", "1", "--mem-fraction-static", "0.8",
                       "--chat-template", "none", "--enable-flashinfer", "--trust-remote-code")
    status, _, body = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": "hello"})
    assert status == 200 and len(body["data"]) == 1
    log = srv.log()
    for flag in ("--chat-template", "--enable-flashinfer", "--mem-fraction-static"):
        assert flag in log, f"a one-line notice should say {flag} is not needed:\n{log}"
    assert "ready in" in log and "bf16" in log and "cpu" in log, "the start-up line names model, dtype and device"


def test_the_start_up_line_says_where_the_start_went(start_server):
    log = start_server().log()
    line = next(x for x in log.splitlines() if "start-up:" in x)
    m = re.search(r"driver ([\d.]+) s, then engine ([\d.]+) s \(device context ([\d.]+) s, checkpoint ([\d.]+) s, "
                  r"weights and workspace ([\d.]+) s, query graphs ([\d.]+) s\); tokenizer ([\d.]+) s, beside them",
                  line)
    assert m, line
    driver, engine, device, checkpoint, weights, graphs, tokenizer = map(float, m.groups())
    ready = float(re.search(r"ready in ([\d.]+) s", log).group(1))
    assert graphs == 0, line  # the CPU records no graphs
    assert abs(engine - (device + checkpoint + weights + graphs)) <= 0.02, line  # each part rounded to 10 ms
    # the driver, then the engine, and the tokenizer beside them: all within the start
    assert driver + engine <= ready + 0.02 and 0 < tokenizer <= ready + 0.01, (line, ready)


@pytest.mark.parametrize("variable,value,says", [
    ("EMBEDSERVE_TP_OVERLAP_TOKENS", "many", "EMBEDSERVE_TP_OVERLAP_TOKENS must be a whole number of tokens"),
    ("EMBEDSERVE_TP_GEMM_CHUNKS", "9", "EMBEDSERVE_TP_GEMM_CHUNKS must be 1 to 8"),
    ("EMBEDSERVE_TP_GEMM_CHUNKS", "0", "EMBEDSERVE_TP_GEMM_CHUNKS must be 1 to 8"),
    ("EMBEDSERVE_CUBLAS_WORKSPACE_MB", "2000000", "EMBEDSERVE_CUBLAS_WORKSPACE_MB must be a whole number of MiB"),
    ("EMBEDSERVE_TP_REDUCE", "f16", "EMBEDSERVE_TP_REDUCE must be bf16"),
    ("EMBEDSERVE_TP_SUM", "nvlink", "EMBEDSERVE_TP_SUM must be peer"),
    ("EMBEDSERVE_GEMM_TUNING", "yes", "EMBEDSERVE_GEMM_TUNING must be 1"),
    ("EMBEDSERVE_GEMM_TUNING", "2", "EMBEDSERVE_GEMM_TUNING must be 1"),
])
def test_a_bad_engine_environment_variable_is_a_one_line_error(binary, tiny_model, variable, value, says):
    proc = subprocess.run([str(binary), "bench", "--model-path", str(tiny_model), "--device", "cpu", "--seq-len", "16",
                           "--seconds", "0"], env={**os.environ, variable: value}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0 and says in proc.stderr and f"got '{value}'" in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr


SGLANG_FLAGS = ["--log-level", "warning", "--enable-metrics", "--disable-radix-cache", "--disable-cuda-graph",
                "--max-running-requests", "64", "--chunked-prefill-size", "4096", "--tensor-parallel-size", "1",
                "--tp-size", "1", "--dp-size", "1", "--attention-backend", "triton", "--skip-server-warmup",
                "--random-seed", "42", "--base-gpu-id", "0", "--kv-cache-dtype", "auto", "--watchdog-timeout", "300",
                "--cuda-graph-max-bs", "8", "--max-total-tokens", "100000"]


def test_every_sglang_launch_flag_of_the_issue_is_accepted(binary, tiny_model):
    # --model is --model-path's alias: the later one wins, so the bogus --model-path below is replaced.
    srv = ServerProcess(binary, tiny_model.parent / "no-such-model", "--model", str(tiny_model), *SGLANG_FLAGS).start()
    try:
        status, _, body = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": "hello"})
        assert status == 200 and len(body["data"]) == 1
        status, _, info = srv.request("GET", "/info")
        assert json.loads(info)["max_batch_tokens"] == 4096, "--chunked-prefill-size sets the batch budget"
        log = srv.log()
        for flag in ("--enable-metrics", "--disable-radix-cache", "--max-running-requests",
                     "--attention-backend", "--skip-server-warmup", "--random-seed", "--kv-cache-dtype",
                     "--watchdog-timeout", "--cuda-graph-max-bs", "--max-total-tokens"):
            notices = [line for line in log.splitlines() if flag in line and "ignored" in line]
            assert len(notices) == 1, f"one notice line expected for {flag}:\n{log}"
        assert "POST /v1/embeddings 200" not in log, "--log-level warning turns the access log off"
    finally:
        assert srv.stop() == 0


def test_log_level_is_checked(binary, tiny_model):
    proc = subprocess.run([str(binary), "serve", "--model-path", str(tiny_model), "--log-level", "loud"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "--log-level" in proc.stderr and "warning" in proc.stderr, proc.stderr


def test_dp_below_one_is_refused_clearly(binary, tiny_model):
    # --dp N starts N replicas (tests/e2e/test_replicas.py); none is not a server. --tp runs
    # (tests/e2e/test_tensor_parallel.py has it and its refusals).
    for flag in ("--dp", "--dp-size"):
        proc = subprocess.run([str(binary), "serve", "--model-path", str(tiny_model), "--port", "0", flag, "0"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0
        assert "--dp" in proc.stderr, proc.stderr


def test_busy_polling_serves_and_stops_cleanly_and_a_bad_value_is_refused(binary, tiny_model):
    # scheduler/busy_poll.h: idle threads poll for work before they sleep (auto: on a GPU only). Forced on here, on
    # the CPU: answers are the same, the start-up says so, and SIGTERM still ends the polling threads at once.
    srv = ServerProcess(binary, tiny_model, "--busy-poll-us", "200000").start()
    try:
        for text in ("hello", "a second query after the first", "hello"):
            status, _, body = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": text})
            assert status == 200 and len(body["data"]) == 1
            time.sleep(0.3)  # past the poll: the threads sleep, and the next request wakes them
        assert "poll 200000 µs for new work" in srv.log(), srv.log()
    finally:
        start = time.monotonic()
        assert srv.stop(signal.SIGTERM) == 0
        assert time.monotonic() - start < 20
    off = ServerProcess(binary, tiny_model).start()  # auto on the CPU: off, and nothing said about it
    try:
        assert "poll" not in off.log(), off.log()
    finally:
        assert off.stop(signal.SIGTERM) == 0
    for value, says in (("soon", "expects a whole number"), ("2000000", "must be between 0 and 1000000")):
        proc = subprocess.run([str(binary), "serve", "--model-path", str(tiny_model), "--busy-poll-us", value],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0 and "--busy-poll-us" in proc.stderr and says in proc.stderr, proc.stderr


def test_help_explains_every_flag(binary):
    proc = subprocess.run([str(binary), "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    for flag in ("--model-path", "--host", "--port", "--tp", "--dp", "--mem-fraction-static", "--device",
                 "--max-num-batched-tokens", "--context-length", "--served-model-name", "--api-key",
                 "--chat-template", "--enable-flashinfer", "--max-queue", "--max-inputs-per-request",
                 "--request-timeout", "--threads", "--max-body-bytes-in-flight", "--max-connections",
                 "--header-timeout", "--cors-allow-origins", "--strict-model-name", "--log-level", "--base-gpu-id",
                 "--tp-size", "--dp-size", "--busy-poll-us", *[f for f in SGLANG_FLAGS if f.startswith("--")]):
        assert flag in proc.stdout, f"{flag} missing from --help"


def test_openmp_workers_sleep_by_default_and_the_user_can_override(binary, tiny_model):
    # src/cli/thread_policy.h: an unset OMP_WAIT_POLICY becomes PASSIVE through a re-exec that keeps the pid
    # (a supervisor's signals still reach the process it started); a value the user set is left alone.
    for preset, expected in ((None, b"OMP_WAIT_POLICY=PASSIVE"), ("ACTIVE", b"OMP_WAIT_POLICY=ACTIVE")):
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if preset:
            env["OMP_WAIT_POLICY"] = preset
        srv = ServerProcess(binary, tiny_model, env=env).start()
        try:
            environ = open(f"/proc/{srv.proc.pid}/environ", "rb").read().split(b"\0")
            assert expected in environ, [e for e in environ if e.startswith(b"OMP_")]
            status, _, body = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": "hello"})
            assert status == 200 and len(body["data"]) == 1
        finally:
            assert srv.stop(signal.SIGTERM) == 0


def test_host_may_be_a_name(start_server):
    srv = start_server("--host", "localhost")
    conn = http.client.HTTPConnection("localhost", srv.port, timeout=30)
    conn.request("GET", "/health")
    assert conn.getresponse().status == 200
    conn.close()
    assert f"http://localhost:{srv.port}" in srv.log()


def test_ipv6_listen_address_is_printed_in_brackets(binary, tiny_model):
    srv = ServerProcess(binary, tiny_model)
    port = free_port()
    log = open(srv.log_path, "wb")
    # The last --host wins; ServerProcess.start() would wait on 127.0.0.1, so this one is started by hand.
    proc = subprocess.Popen([str(binary), "serve", "--model-path", str(tiny_model), "--host", "::1", "--port",
                             str(port), "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        deadline = time.monotonic() + 60
        while "listening on" not in srv.log() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"listening on http://[::1]:{port}" in srv.log(), srv.log()
        conn = http.client.HTTPConnection("::1", port, timeout=30)  # the printed address is the one that answers
        conn.request("GET", "/health")
        assert conn.getresponse().status in (200, 503)
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def test_serve_acts_on_dtype_as_embed_does(binary, tiny_model):
    # serve once accepted --dtype and ignored it: on the CPU, bf16 keeps the weights bf16 and float32 widens them,
    # and the ready line says which.
    for dtype, held in (("bf16", "held bf16"), ("float32", "held f32")):
        srv = ServerProcess(binary, tiny_model, "--device", "cpu", "--dtype", dtype).start()
        try:
            ready = next(line for line in srv.log().splitlines() if "ready in" in line)
            assert held in ready, ready
        finally:
            assert srv.stop() == 0


def test_cpu_default_budget_sizes_the_workspace_for_a_batch_not_the_context(start_server, tmp_path):
    """Issue 15: on the CPU the default batch budget is 2,048 tokens and the workspace holds one batch or chunk,
    not the 40,960-token context (the 4B's would be 8 GB); a longer input goes in chunks. A model whose pooling
    takes no chunks (mean) still gets a workspace for its longest input."""
    srv = start_server()
    status, _, info = srv.request("GET", "/info")
    assert status == 200 and json.loads(info)["max_batch_tokens"] == 2048, info
    ready = next(line for line in srv.log().splitlines() if "ready in" in line)
    assert "for 2048 tokens" in ready and "batch budget 2048 tokens" in ready, ready
    # Longer than the workspace: embedded in chunks, the same vector as with a workspace that holds it whole.
    long_input = [(7 * i) % 150000 + 10 for i in range(3000)]
    status, _, body = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": [long_input]})
    assert status == 200, body
    whole = start_server("--max-num-batched-tokens", "4096")
    assert "for 4096 tokens" in next(line for line in whole.log().splitlines() if "ready in" in line)
    status, _, whole_body = whole.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": [long_input]})
    assert status == 200
    a, b = body["data"][0]["embedding"], whole_body["data"][0]["embedding"]
    assert sum(x * y for x, y in zip(a, b)) > 0.9999, "chunks give the whole input's vector (to rounding)"

    mean_model = make_model(tmp_path / "mean", seed=2, pooling="mean")
    mean = start_server("--context-length", "4000", model_dir=mean_model)
    ready = next(line for line in mean.log().splitlines() if "ready in" in line)
    assert "for 4000 tokens" in ready and "batch budget 2048 tokens" in ready, ready
