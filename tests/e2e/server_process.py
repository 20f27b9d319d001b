"""Starts and stops one `embedserve serve` process on a free loopback port (shared by the e2e tests and bench/server)."""
from __future__ import annotations

import http.client
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The tiny model every e2e test runs on: the real Qwen3 tokenizer and vocabulary (so token-id limits are the
# real ones), a 2-layer 32-wide transformer so a forward pass costs microseconds on two cores.
TINY_MODEL = dict(hidden=32, layers=2, heads=4, kv_heads=2, head_dim=16, intermediate=64, dtype="bf16",
                  vocab_size=151665)


def find_binary() -> pathlib.Path:
    """The embedserve binary: $EMBEDSERVE_BIN, else build/embedserve under the repository root."""
    path = pathlib.Path(os.environ.get("EMBEDSERVE_BIN", ROOT / "build" / "embedserve"))
    if not path.is_file() or not os.access(path, os.X_OK):
        raise FileNotFoundError(
            f"embedserve binary not found at {path}: build it (bash scripts/build.sh) or set EMBEDSERVE_BIN")
    return path


def make_model(out_dir: pathlib.Path, seed: int = 1, **overrides) -> pathlib.Path:
    """Writes a random-weight Qwen3 embedding model with tools/make_random_model.py; returns its directory."""
    spec = {**TINY_MODEL, **overrides}
    cmd = [sys.executable, str(ROOT / "tools" / "make_random_model.py"), "--out", str(out_dir), "--seed", str(seed)]
    for key, value in spec.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """One `embedserve serve` child process; its stdout+stderr go to a log file the tests can read."""

    def __init__(self, binary: pathlib.Path, model_dir: pathlib.Path, *extra_args: str,
                 env: dict[str, str] | None = None, preexec_fn=None):
        self.env = env  # None: inherit this process's environment
        self.preexec_fn = preexec_fn  # run in the child before exec (e.g. to set a resource limit)
        self.binary = binary
        self.model_dir = model_dir
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = pathlib.Path(tempfile.mkstemp(prefix="embedserve-", suffix=".log")[1])
        self.ready_seconds: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        cmd = [str(self.binary), "serve", "--model-path", str(self.model_dir), "--host", "127.0.0.1",
               "--port", str(self.port), "--device", "cpu", *self.extra_args]
        log = open(self.log_path, "wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.env, preexec_fn=self.preexec_fn)
        log.close()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"embedserve exited with {self.proc.returncode} before /health was ready:\n"
                                   f"{' '.join(cmd)}\n{self.log()}")
            try:
                status, _, _ = self.request("GET", "/health", timeout=2)
                if status == 200:
                    self.ready_seconds = time.monotonic() - t0
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError(f"embedserve did not report healthy within {timeout} s:\n{self.log()}")

    def request(self, method: str, path: str, body: bytes | dict | list | None = None,
                headers: dict | None = None, timeout: float = 60) -> tuple[int, dict, bytes]:
        """One raw HTTP request on a fresh connection: (status, lower-cased headers, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def post_json(self, path: str, payload, headers: dict | None = None, timeout: float = 60):
        """POSTs JSON; returns (status, headers, parsed JSON body or None if the body is not JSON)."""
        status, hdrs, raw = self.request("POST", path, payload, headers, timeout)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return status, hdrs, parsed

    def rss_bytes(self) -> int:
        """Resident set size of the server process, from /proc/<pid>/status (VmRSS, in kB)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("VmRSS missing from /proc status")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Sends `sig` and waits; returns the exit code (kills and raises if it does not exit in time)."""
        if self.proc is None:
            raise RuntimeError("server was never started")
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"embedserve did not exit within {timeout} s of signal {sig}; log tail:\n"
                                   f"{self.log()[-3000:]}")
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
