"""Durability of batch jobs: a 50,000-line job whose server is killed with SIGKILL at five random moments and
restarted each time ends with every custom_id exactly once, each vector bitwise equal to an uninterrupted run's
(`embedserve embed` on the same file), and nothing temporary left under --data-dir."""
from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import time

import openai

from batch_helpers import output_vectors, random_texts_file, request_line, wait_for_batch
from server_process import ServerProcess

N_LINES = 50000
KILLS = 5


def test_a_job_killed_five_times_resumes_and_writes_every_request_once_bitwise_equal(binary, tiny_model, tmp_path):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    requests = tmp_path / "requests.jsonl"
    requests.write_bytes(random_texts_file(N_LINES, seed=seed))
    # The uninterrupted run: the same requests through `embed`, which runs the server's batch endpoint offline.
    clean_path = tmp_path / "clean.jsonl"
    subprocess.run([str(binary), "embed", "--model-path", str(tiny_model), "--input", str(requests), "--output",
                    str(clean_path), "--device", "cpu"], check=True, capture_output=True)
    clean = output_vectors(clean_path.read_bytes())
    assert len(clean) == N_LINES

    data = tmp_path / "data"
    srv = ServerProcess(binary, tiny_model, "--data-dir", str(data)).start()
    c = openai.OpenAI(base_url=srv.base_url + "/v1", api_key="x", max_retries=0)
    f = c.files.create(file=("requests.jsonl", requests.read_bytes()), purpose="batch")
    batch_id = c.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h").id
    # Kill points spread over the run: once committed progress passes each, after a random extra delay (so a kill
    # lands anywhere within a chunk: mid-tokenisation, mid-compute, mid-write or right after a commit).
    thresholds = sorted(rng.sample(range(1000, N_LINES - 5000), KILLS))  # ≥ 5,000 lines left at each kill
    seen_progress = []
    for threshold in thresholds:
        deadline = time.monotonic() + 60
        while True:
            status, _, raw = srv.request("GET", f"/v1/batches/{batch_id}")
            b = json.loads(raw)
            assert status == 200 and b["status"] in ("validating", "in_progress"), (seed, b)
            if b["request_counts"]["completed"] >= threshold:
                break
            assert time.monotonic() < deadline, (seed, b)
            time.sleep(0.005)
        seen_progress.append(b["request_counts"]["completed"])
        time.sleep(rng.uniform(0, 0.03))
        srv.stop(signal.SIGKILL)
        srv = ServerProcess(binary, tiny_model, "--data-dir", str(data)).start()
        # The runner starts just after /health turns healthy; its first act is to resume the job.
        deadline = time.monotonic() + 10
        while "resuming batch " + batch_id not in srv.log():
            assert time.monotonic() < deadline, (seed, srv.log())
            time.sleep(0.01)
    c = openai.OpenAI(base_url=srv.base_url + "/v1", api_key="x", max_retries=0)
    done = wait_for_batch(lambda i: c.batches.retrieve(i).model_dump(), batch_id)
    assert done["status"] == "completed", (seed, done)
    assert done["request_counts"] == {"total": N_LINES, "completed": N_LINES, "failed": 0}, (seed, done)
    got = output_vectors(c.files.content(done["output_file_id"]).content)  # asserts each custom_id appears once
    assert len(got) == N_LINES and got.keys() == clean.keys(), seed
    differing = [k for k in clean if got[k] != clean[k]]
    assert not differing, f"seed {seed}: {len(differing)} vectors differ from the clean run, e.g. {differing[:3]}"
    assert srv.stop(signal.SIGTERM) == 0
    # Nothing temporary survives: no upload in progress, and under files/ only the input and the output.
    assert os.listdir(data / "tmp") == [], seed
    assert len(os.listdir(data / "files")) == 2, (seed, os.listdir(data / "files"))
    assert seen_progress == sorted(seen_progress), seed


def test_embed_answers_batch_input_offline_in_openais_formats(binary, tiny_model, tmp_path):
    requests = tmp_path / "requests.jsonl"
    requests.write_text(request_line("a", {"input": "hello", "encoding_format": "float"}) + "not json\n" +
                        request_line("b", {"input": ["x", "y"], "dimensions": 4, "encoding_format": "float"}) +
                        request_line("c", {"input": ""}))
    out = tmp_path / "out.jsonl"
    proc = subprocess.run([str(binary), "embed", "--model-path", str(tiny_model), "--input", str(requests), "--output",
                           str(out), "--device", "cpu"], capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr  # some requests failed
    assert "2 requests completed, 2 failed" in proc.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["custom_id"] for x in lines] == ["a", "b"]
    assert [len(d["embedding"]) for d in lines[1]["response"]["body"]["data"]] == [4, 4]
    errors = [json.loads(x) for x in (tmp_path / "out.errors.jsonl").read_text().splitlines()]
    assert errors[0]["error"]["code"] == "invalid_json" and errors[1]["response"]["status_code"] == 400
    assert not list(tmp_path.glob("*.partial"))


def test_sigterm_during_a_job_exits_cleanly_and_commits_no_shutdown_errors(binary, tiny_model, tmp_path):
    data = tmp_path / "data"
    srv = ServerProcess(binary, tiny_model, "--data-dir", str(data)).start()
    c = openai.OpenAI(base_url=srv.base_url + "/v1", api_key="x", max_retries=0)
    f = c.files.create(file=("r.jsonl", random_texts_file(20000, seed=4)), purpose="batch")
    batch_id = c.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h").id
    wait_for_batch(lambda i: c.batches.retrieve(i).model_dump(), batch_id, until=("in_progress",))
    while c.batches.retrieve(batch_id).request_counts.completed == 0:
        time.sleep(0.01)
    assert srv.stop(signal.SIGTERM) == 0, srv.log()[-2000:]
    srv = ServerProcess(binary, tiny_model, "--data-dir", str(data)).start()
    c = openai.OpenAI(base_url=srv.base_url + "/v1", api_key="x", max_retries=0)
    done = wait_for_batch(lambda i: c.batches.retrieve(i).model_dump(), batch_id)
    # Chunks the scheduler answered with "shutting down" were not committed as failed lines: they ran again.
    assert done["status"] == "completed" and done["request_counts"] == {"total": 20000, "completed": 20000,
                                                                        "failed": 0}, done
    assert len(output_vectors(c.files.content(done["output_file_id"]).content)) == 20000
    assert srv.stop(signal.SIGTERM) == 0
