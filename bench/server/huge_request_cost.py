"""What huge requests cost a server on the tiny random model (issue 13, item 1): the time to answer a 20 MB text and
a 5M-id list with and without truncation, the growth of the server's peak RSS over all of them, and the latency of
a small request sent while two 20 MB requests are in flight.

Run: python3 bench/server/huge_request_cost.py [--binary build/embedserve]
(needs numpy, for tools/make_random_model.py; the model is written to a temporary directory)
"""
import argparse
import concurrent.futures
import json
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from server_process import ServerProcess, make_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=str(ROOT / "build" / "embedserve"))
    args = ap.parse_args()
    model = make_model(pathlib.Path(tempfile.mkdtemp()) / "tiny-qwen3-embedding", seed=1)
    srv = ServerProcess(pathlib.Path(args.binary), model, "--context-length", "64").start()

    def peak_mib():
        with open(f"/proc/{srv.proc.pid}/status") as f:
            return next(int(l.split()[1]) / 1024 for l in f if l.startswith("VmHWM"))

    def post(body: bytes):
        start = time.monotonic()
        status, _, _ = srv.request("POST", "/v1/embeddings", body, {"Content-Type": "application/json"}, timeout=300)
        return status, time.monotonic() - start

    try:
        base = peak_mib()
        word = json.dumps({"input": "a" * 20_000_000}).encode()
        prose = "hello world, some text. " * 833_334
        ids = ",".join(["9707"] * 5_000_000)
        cases = [
            ("20 MB word, truncation off", word),
            ("20 MB word, truncate", json.dumps({"input": "ab" * 10_000_000, "truncate": True}).encode()),
            ("20 MB prose, truncation off", json.dumps({"input": prose}).encode()),
            ("20 MB prose, truncate", json.dumps({"input": prose, "truncate": True}).encode()),
            ("5M ids (25 MB), truncation off", f'{{"input": [{ids}]}}'.encode()),
            ("5M ids, truncate", f'{{"input": [{ids}], "truncate": true}}'.encode()),
        ]
        for name, body in cases:
            print("%-32s status %d in %.3f s" % ((name,) + post(body)))
        print("peak RSS growth over the six: %.0f MiB" % (peak_mib() - base))
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            huge = [pool.submit(post, word) for _ in range(2)]
            time.sleep(0.2)
            status, small = post(json.dumps({"input": "hello"}).encode())
            print("small request beside two 20 MB ones: status %d in %.3f s; the 20 MB ones took %s s"
                  % (status, small, ", ".join("%.3f" % f.result()[1] for f in huge)))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
