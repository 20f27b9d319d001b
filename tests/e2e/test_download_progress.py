"""`serve` shows a download's bytes, percentage and rate, as `embed` does (issue 13, item 14): it once printed only
"downloading FILE". Its stderr is a log here (not a terminal), so the figures come as lines, not a bar."""
import os
import pathlib
import re
import subprocess
import sys

FAKE_HUB = pathlib.Path(__file__).resolve().parents[1] / "weights" / "fake_hub.py"


def test_serve_reports_each_files_size_and_completion(binary, tmp_path):
    hub = subprocess.Popen([sys.executable, str(FAKE_HUB), "--port", "0", "--exit-on-stdin-eof"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(hub.stdout.readline().split()[1])
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("HF_")}
        env.update(HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HUB_CACHE=str(tmp_path / "cache"),
                   no_proxy="127.0.0.1,localhost")
        # The fake hub's tokenizer is not Qwen's, so serve stops after the download: what it printed is the point.
        proc = subprocess.run([str(binary), "serve", "--model-path", "tiny-org/tiny-embed", "--port", "0",
                               "--device", "cpu"], env=env, capture_output=True, text=True, timeout=120)
    finally:
        hub.stdin.close()
        hub.wait(timeout=10)
    log = proc.stderr
    for shard in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        assert re.search(rf"^embedserve serve: downloading {shard} \(\d+\.\d KiB\)$", log, re.M), log
        assert re.search(rf"^embedserve serve: downloaded {shard}: (\S+ KiB) of \1 \(100%\) in 0:\d\d, \S+ \S+/s$",
                         log, re.M), log
    assert "\r" not in log, "a log gets lines, not a bar's carriage returns"
