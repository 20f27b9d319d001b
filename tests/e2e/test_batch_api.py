"""The Files and Batches API end to end: the official openai client unchanged, OpenAI's line formats, bad lines,
validation, cancel, listing, limits, and what one API key can see of another's objects."""
from __future__ import annotations

import io
import json
import os
import re
import resource
import signal as sig

import openai
import pytest

from batch_helpers import output_vectors, random_texts_file, request_line, wait_for_batch
from helpers import MODEL_NAME, assert_error, raw_http
from server_process import ServerProcess


def client(srv, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url + "/v1", api_key=key, max_retries=0)


def upload(srv, content: bytes, key: str | None = None, purpose: str = "batch", filename: str = "in.jsonl",
           field: str = "file", extra_fields: dict | None = None):
    """POST /v1/files as multipart/form-data by hand (status, parsed body)."""
    boundary = "embedserve-test-boundary"
    fields = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                     for k, v in (extra_fields or {}).items())
    body = (fields + f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/jsonl\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    status, _, raw = srv.request("POST", "/v1/files", body, headers)
    return status, json.loads(raw)


def get(srv, path: str, key: str | None = None):
    status, _, raw = srv.request("GET", path, headers={"Authorization": f"Bearer {key}"} if key else None)
    return status, json.loads(raw) if raw else None


@pytest.fixture
def jobs_server(start_server, tmp_path):
    return start_server("--data-dir", str(tmp_path / "data"))


def test_openai_client_uploads_runs_a_batch_and_downloads_vectors_equal_to_the_route(jobs_server):
    c = client(jobs_server)
    texts = [f"text number {i} " + "word " * (i % 7) for i in range(300)]
    lines = "".join(request_line(f"req-{i}", {"model": MODEL_NAME, "input": t, "encoding_format": "float"})
                    for i, t in enumerate(texts))
    f = c.files.create(file=("requests.jsonl", io.BytesIO(lines.encode())), purpose="batch")
    assert re.fullmatch(r"file-[0-9a-f]{32}", f.id) and f.purpose == "batch" and f.bytes == len(lines.encode())
    assert c.files.retrieve(f.id).filename == "requests.jsonl"
    b = c.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h",
                         metadata={"run": "e2e"})
    assert b.status == "validating" and b.metadata == {"run": "e2e"} and re.fullmatch(r"batch_[0-9a-f]{32}", b.id)
    done = wait_for_batch(lambda i: c.batches.retrieve(i).model_dump(), b.id)
    assert done["status"] == "completed", done
    assert done["request_counts"] == {"total": 300, "completed": 300, "failed": 0}
    assert done["error_file_id"] is None and done["completed_at"] >= done["in_progress_at"] >= done["created_at"]
    got = output_vectors(c.files.content(done["output_file_id"]).content)
    assert list(got) == [f"req-{i}" for i in range(300)]  # output lines keep the input's order
    direct = c.embeddings.create(model=MODEL_NAME, input=texts[:64], encoding_format="float")
    for i, d in enumerate(direct.data):
        assert got[f"req-{i}"] == d.embedding, f"req-{i}: the batch's vector differs from /v1/embeddings'"
    # Listing: newest first, paged with after/limit, as the client iterates it.
    second = c.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h")
    page = c.batches.list(limit=1)
    assert [x.id for x in page.data] == [second.id] and page.has_more
    assert [x.id for x in c.batches.list(limit=1, after=second.id).data] == [b.id]
    assert {x.id for x in c.files.list().data} >= {f.id, done["output_file_id"]}
    wait_for_batch(lambda i: c.batches.retrieve(i).model_dump(), second.id)
    assert c.files.delete(done["output_file_id"]).deleted
    with pytest.raises(openai.NotFoundError):
        c.files.retrieve(done["output_file_id"])


def test_a_bad_line_fails_alone_and_goes_to_the_error_file_with_a_message(jobs_server):
    c = client(jobs_server)
    content = (request_line("good-1", {"input": "hello"}) + "this is not json\n" +
               request_line("wrong-url", {"input": "x"}, url="/v1/chat/completions") +
               json.dumps({"method": "POST", "url": "/v1/embeddings", "body": {"input": "x"}}) + "\n" +
               request_line("empty-input", {"input": ""}) + "\n" +  # a blank line is no request
               request_line("good-2", {"input": ["a", "b"], "dimensions": 8}))
    f = c.files.create(file=("mixed.jsonl", io.BytesIO(content.encode())), purpose="batch")
    b = c.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h")
    done = wait_for_batch(lambda i: c.batches.retrieve(i).model_dump(), b.id)
    assert done["status"] == "completed" and done["request_counts"] == {"total": 6, "completed": 2, "failed": 4}
    out = [json.loads(x) for x in c.files.content(done["output_file_id"]).text.splitlines()]
    assert [o["custom_id"] for o in out] == ["good-1", "good-2"]
    assert len(out[1]["response"]["body"]["data"]) == 2 and len(out[1]["response"]["body"]["data"][0]["embedding"]) == 8
    errors = [json.loads(x) for x in c.files.content(done["error_file_id"]).text.splitlines()]
    assert [e["custom_id"] for e in errors] == [None, "wrong-url", None, "empty-input"]
    assert [e["error"]["code"] for e in errors[:3]] == ["invalid_json", "invalid_url", "missing_custom_id"]
    assert all(e["error"]["message"] for e in errors[:3])
    # A body the route refuses: its 400 answer, as /v1/embeddings would give it.
    assert errors[3]["error"] is None and errors[3]["response"]["status_code"] == 400
    assert errors[3]["response"]["body"]["error"]["message"]


def test_a_file_that_is_not_jsonl_fails_validation_with_an_errors_entry(jobs_server):
    c = client(jobs_server)
    f = c.files.create(file=("data.csv", io.BytesIO(b"id,text\n1,hello\n2,world\n")), purpose="batch")
    b = c.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h")
    done = wait_for_batch(lambda i: c.batches.retrieve(i).model_dump(), b.id)
    assert done["status"] == "failed" and done["failed_at"] and done["output_file_id"] is None
    (err,) = done["errors"]["data"]
    assert err["code"] == "invalid_json_line" and err["line"] == 1 and "JSON Lines" in err["message"]


def test_cancel_stops_a_running_job_and_keeps_what_it_finished(jobs_server):
    c = client(jobs_server)
    f = c.files.create(file=("big.jsonl", io.BytesIO(random_texts_file(50000, seed=3))), purpose="batch")
    b = c.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h")
    cancelling = c.batches.cancel(b.id)
    assert cancelling.status in ("cancelling", "cancelled") and cancelling.cancelling_at
    done = wait_for_batch(lambda i: c.batches.retrieve(i).model_dump(), b.id)
    assert done["status"] == "cancelled" and done["cancelled_at"], done
    assert done["request_counts"]["completed"] < 50000
    if done["request_counts"]["completed"]:
        assert len(c.files.content(done["output_file_id"]).text.splitlines()) == done["request_counts"]["completed"]
    # A finished job can no longer be cancelled: 409 batch_not_cancellable.
    one = c.files.create(file=("one.jsonl", io.BytesIO(request_line("a", {"input": "x"}).encode())), purpose="batch")
    small = c.batches.create(input_file_id=one.id, endpoint="/v1/embeddings", completion_window="24h")
    assert wait_for_batch(lambda i: c.batches.retrieve(i).model_dump(), small.id)["status"] == "completed"
    with pytest.raises(openai.ConflictError):
        c.batches.cancel(small.id)


def test_create_checks_the_input_file_endpoint_and_window(jobs_server):
    status, f = upload(jobs_server, request_line("a", {"input": "x"}).encode())
    assert status == 200, f
    for payload, param in [({"endpoint": "/v1/embeddings", "completion_window": "24h"}, "input_file_id"),
                           ({"input_file_id": "file-" + "0" * 32, "endpoint": "/v1/embeddings",
                             "completion_window": "24h"}, "input_file_id"),
                           ({"input_file_id": f["id"], "endpoint": "/v1/chat/completions",
                             "completion_window": "24h"}, "endpoint"),
                           ({"input_file_id": f["id"], "endpoint": "/v1/embeddings", "completion_window": "soon"},
                            "completion_window")]:
        status, _, body = jobs_server.post_json("/v1/batches", payload)
        assert assert_error(status, body, 400)["param"] == param
    status, body = upload(jobs_server, b"x", purpose="fine-tune")
    assert assert_error(status, body, 400)["param"] == "purpose"
    # OpenAI's expires_after: the file reports when it will be deleted.
    status, body = upload(jobs_server, b"x", extra_fields={"expires_after[anchor]": "created_at",
                                                            "expires_after[seconds]": "3600"})
    assert status == 200 and body["expires_at"] == body["created_at"] + 3600, body
    status, body = upload(jobs_server, b"x", extra_fields={"expires_after[seconds]": "60"})
    assert assert_error(status, body, 400)["param"] == "expires_after"


def test_the_routes_say_how_to_enable_them_without_data_dir(server):
    status, _, body = server.request("GET", "/v1/batches")
    assert "--data-dir" in assert_error(status, body, 404)["message"]
    status, body = upload(server, b"x")
    assert "--data-dir" in assert_error(status, body, 404)["message"]


def test_an_upload_past_max_file_bytes_is_413_before_it_is_read(start_server, tmp_path):
    srv = start_server("--data-dir", str(tmp_path / "d"), "--max-file-bytes", "1000")
    status, body = upload(srv, b"x" * 5000)
    assert "--max-file-bytes" in assert_error(status, body, 413)["message"]
    assert os.listdir(tmp_path / "d" / "tmp") == []
    status, body = upload(srv, request_line("a", {"input": "x"}).encode())
    assert status == 200, body


def test_uploads_stream_chunked_and_keep_alive_while_other_bodies_keep_max_body_bytes(start_server, tmp_path):
    srv = start_server("--data-dir", str(tmp_path / "d"), "--max-body-bytes", "2048", "--max-file-bytes", "100000")
    boundary = "b"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--{boundary}\r\n"
                 f"Content-Disposition: form-data; name=\"file\"; filename=\"c.jsonl\"\r\n\r\n").encode()
    multipart += request_line("a", {"input": "x" * 5000}).encode() + f"\r\n--{boundary}--\r\n".encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(multipart[i:i + 1000]), multipart[i:i + 1000])
                       for i in range(0, len(multipart), 1000)) + b"0\r\n\r\n"
    head = (f"POST /v1/files HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()
    # A chunked upload past --max-body-bytes (2 KiB) is fine: uploads have --max-file-bytes; the connection stays
    # open for the next request, which is a JSON body held to --max-body-bytes again.
    big_json = b'{"input": "' + b"y" * 4000 + b'"}'
    second = (b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(big_json)) + big_json
    statuses, raw, _ = raw_http(srv.port, head + chunked + second, timeout=5)
    assert statuses == [200, 413], raw[-600:]
    assert b"--max-body-bytes" in raw
    # A chunked JSON body past --max-body-bytes is refused as it grows, as without --data-dir.
    body = b'{"input": "' + b"z" * 4000 + b'"}'
    chunked_json = (b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                    b"Content-Type: application/json\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    statuses, raw, _ = raw_http(srv.port, chunked_json, timeout=5)
    assert statuses == [413], raw[-400:]
    assert os.listdir(tmp_path / "d" / "tmp") == []


def test_a_job_past_max_storage_bytes_fails_clearly_and_leaves_no_partial_file(start_server, tmp_path):
    content = random_texts_file(2000, seed=5)
    # Room for the input and its multipart copy, far from the ~1 MB of vectors the job would write.
    srv = start_server("--data-dir", str(tmp_path / "d"), "--max-storage-bytes", str(2 * len(content) + 50000))
    c = client(srv)
    f = c.files.create(file=("in.jsonl", io.BytesIO(content)), purpose="batch")
    b = c.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h")
    done = wait_for_batch(lambda i: c.batches.retrieve(i).model_dump(), b.id)
    assert done["status"] == "failed" and done["output_file_id"] is None
    (err,) = done["errors"]["data"]
    assert err["code"] == "storage_full" and "--max-storage-bytes" in err["message"]
    assert len(os.listdir(tmp_path / "d" / "files")) == 1  # the input alone: the job's results were removed
    with pytest.raises(openai.APIStatusError) as e:  # an upload past the bound: 507
        c.files.create(file=("again.jsonl", io.BytesIO(content * 3)), purpose="batch")
    assert e.value.status_code == 507


def test_a_write_the_disk_refuses_fails_the_job_clearly_and_the_server_goes_on(binary, tiny_model, tmp_path):
    """A full disk, simulated with RLIMIT_FSIZE (writes past 4 MB fail with EFBIG, as ENOSPC would): the job
    fails with storage_full, its partial files are removed, and the server keeps serving."""

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))

    srv = ServerProcess(binary, tiny_model, "--data-dir", str(tmp_path / "d"), preexec_fn=limit_file_size).start()
    try:
        c = client(srv)
        # 10,000 float-format answers are ~7 MB of output from a ~1 MB input: past the limit mid-job.
        f = c.files.create(file=("in.jsonl", io.BytesIO(random_texts_file(10000, seed=9))), purpose="batch")
        b = c.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h")
        done = wait_for_batch(lambda i: c.batches.retrieve(i).model_dump(), b.id)
        assert done["status"] == "failed" and done["output_file_id"] is None, done
        (err,) = done["errors"]["data"]
        assert err["code"] == "storage_full" and "full" in err["message"], err
        assert len(os.listdir(tmp_path / "d" / "files")) == 1  # the input alone
        assert len(c.embeddings.create(model=MODEL_NAME, input="still serving").data) == 1
    finally:
        assert srv.stop(sig.SIGTERM) == 0, srv.log()[-2000:]


def test_every_route_needs_a_key_and_one_keys_objects_are_invisible_to_another(start_server, tmp_path):
    srv = start_server("--data-dir", str(tmp_path / "d"), "--api-key", "key-one", "key-two")
    status, body = upload(srv, request_line("a", {"input": "x"}).encode())
    assert_error(status, body, 401)
    for method, path in [("GET", "/v1/files"), ("GET", "/v1/batches"), ("POST", "/v1/batches"),
                         ("GET", "/v1/files/file-" + "0" * 32), ("GET", "/v1/files/file-" + "0" * 32 + "/content"),
                         ("DELETE", "/v1/files/file-" + "0" * 32), ("GET", "/v1/batches/batch_" + "0" * 32),
                         ("POST", "/v1/batches/batch_" + "0" * 32 + "/cancel")]:
        status, _, raw = srv.request(method, path, b"{}" if method == "POST" else None,
                                     {"Authorization": "Bearer wrong"})
        assert_error(status, raw, 401)
    one, two = client(srv, "key-one"), client(srv, "key-two")
    f = one.files.create(file=("a.jsonl", io.BytesIO(request_line("a", {"input": "x"}).encode())), purpose="batch")
    b = one.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h")
    for call in (lambda: two.files.retrieve(f.id), lambda: two.files.content(f.id), lambda: two.files.delete(f.id),
                 lambda: two.batches.retrieve(b.id), lambda: two.batches.cancel(b.id)):
        with pytest.raises(openai.NotFoundError):
            call()
    with pytest.raises(openai.BadRequestError):  # another key's file cannot feed a batch either
        two.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h")
    assert two.files.list().data == [] and two.batches.list().data == []
    done = wait_for_batch(lambda i: one.batches.retrieve(i).model_dump(), b.id)
    assert done["status"] == "completed"
    assert {x.id for x in one.files.list().data} == {f.id, done["output_file_id"]}
    assert two.files.list().data == []


def test_ids_are_random_and_never_paths(jobs_server, tmp_path):
    ids = {upload(jobs_server, request_line("a", {"input": "x"}).encode())[1]["id"] for _ in range(5)}
    assert len(ids) == 5 and all(re.fullmatch(r"file-[0-9a-f]{32}", i) for i in ids)
    # Nothing under files/ is named after an id, so no id can address a file on disk.
    stored = os.listdir(tmp_path / "data" / "files")
    assert len(stored) == 5 and not set(stored) & {i for i in ids}
    for probe in ["file-..%2F..%2Fjobs.sqlite3", "..", "jobs.sqlite3", "file-" + "g" * 32, stored[0]]:
        status, body = get(jobs_server, "/v1/files/" + probe + "/content")
        assert status == 404, (probe, body)


@pytest.mark.parametrize("route, limit, bound", [("/v1/batches", "0", 100), ("/v1/batches", "abc", 100),
                                                  ("/v1/batches", "101", 100), ("/v1/files", "10001", 10000)])
def test_a_list_limit_outside_its_range_is_400_naming_the_range(jobs_server, route, limit, bound):
    status, _, body = jobs_server.request("GET", f"{route}?limit={limit}")
    err = assert_error(status, body, 400)
    assert err["param"] == "limit" and f"from 1 to {bound}, got '{limit}'" in err["message"], err
