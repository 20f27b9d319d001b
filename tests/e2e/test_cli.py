"""`embedserve serve` takes SGLang's launch flags: the ones it does not need are accepted with a notice."""
import subprocess

from helpers import MODEL_NAME


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
