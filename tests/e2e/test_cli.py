"""`embedserve serve` takes SGLang's launch flags: the ones it does not need are accepted with a notice."""
import os
import signal
import subprocess

from helpers import MODEL_NAME
from server_process import ServerProcess


def test_sglang_launch_flags_are_accepted(start_server):
    srv = start_server("--is-embedding", "--tp", "1", "--dp", "1", "--mem-fraction-static", "0.8",
                       "--chat-template", "none", "--enable-flashinfer", "--trust-remote-code")
    status, _, body = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": "hello"})
    assert status == 200 and len(body["data"]) == 1
    log = srv.log()
    for flag in ("--chat-template", "--enable-flashinfer", "--mem-fraction-static"):
        assert flag in log, f"a one-line notice should say {flag} is not needed:\n{log}"
    assert "ready in" in log and "bf16" in log and "cpu" in log, "the start-up line names model, dtype and device"


def test_tp_and_dp_above_one_are_refused_clearly(binary, tiny_model):
    for flag in ("--tp", "--dp"):
        proc = subprocess.run([str(binary), "serve", "--model-path", str(tiny_model), "--port", "0", flag, "2"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0
        assert flag in proc.stderr and "1" in proc.stderr, proc.stderr


def test_help_explains_every_flag(binary):
    proc = subprocess.run([str(binary), "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    for flag in ("--model-path", "--host", "--port", "--tp", "--dp", "--mem-fraction-static", "--device",
                 "--max-num-batched-tokens", "--context-length", "--served-model-name", "--api-key",
                 "--chat-template", "--enable-flashinfer", "--max-queue", "--max-inputs-per-request",
                 "--request-timeout", "--threads"):
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
