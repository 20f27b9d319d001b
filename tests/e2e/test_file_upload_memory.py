"""A 1 GB file uploads through POST /v1/files streamed to disk: the server's resident memory rises by less than
64 MB while it arrives (measured from /proc), and the stored file is the bytes sent."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading
import time

FILE_BYTES = 1 << 30
LIMIT_BYTES = 64 << 20
LINE = (json.dumps({"custom_id": "x" * 16, "method": "POST", "url": "/v1/embeddings",
                    "body": {"input": "a memory test line " * 4}}) + "\n").encode()


def test_a_1_gb_upload_raises_resident_memory_by_less_than_64_mb(start_server, tmp_path):
    srv = start_server("--data-dir", str(tmp_path / "data"), "--max-file-bytes", str(2 << 30))
    block = LINE * ((1 << 20) // len(LINE))  # ~1 MiB of whole lines
    n_blocks = FILE_BYTES // len(block)
    boundary = "upload-memory-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jsonl\"\r\n"
            f"Content-Type: application/jsonl\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = len(block) * n_blocks

    baseline = srv.rss_bytes()
    peak = [baseline]
    sampling = threading.Event()

    def sample():
        while not sampling.is_set():
            peak[0] = max(peak[0], srv.rss_bytes())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    digest = hashlib.sha256()
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=300)
    try:
        conn.putrequest("POST", "/v1/files")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head) + size + len(tail)))
        conn.endheaders()
        conn.send(head)
        for _ in range(n_blocks):
            conn.send(block)
            digest.update(block)
        conn.send(tail)
        resp = conn.getresponse()
        body = json.loads(resp.read())
    finally:
        conn.close()
        sampling.set()
        sampler.join()
    assert resp.status == 200, body
    assert body["bytes"] == size
    rise = peak[0] - baseline
    assert rise < LIMIT_BYTES, f"resident memory rose by {rise / 2**20:.1f} MiB during a {size / 2**30:.2f} GiB upload"
    # The stored bytes are the bytes sent (hashed while streaming them back, again without holding them).
    status, _, _ = srv.request("GET", f"/v1/files/{body['id']}")
    assert status == 200
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=300)
    try:
        conn.request("GET", f"/v1/files/{body['id']}/content")
        resp = conn.getresponse()
        assert resp.status == 200 and int(resp.getheader("Content-Length")) == size
        back = hashlib.sha256()
        while chunk := resp.read(1 << 20):
            back.update(chunk)
    finally:
        conn.close()
    assert back.hexdigest() == digest.hexdigest()
    assert os.listdir(tmp_path / "data" / "tmp") == []
    status, _, _ = srv.request("DELETE", f"/v1/files/{body['id']}")  # pytest keeps old tmp dirs: free the GiB now
    assert status == 200 and os.listdir(tmp_path / "data" / "files") == []
    print(f"1 GiB upload: resident memory {baseline / 2**20:.1f} MiB before, peak rise {rise / 2**20:.1f} MiB")
