#!/usr/bin/env python3
"""A Hugging Face hub look-alike on loopback, for testing downloads offline.

Serves tiny generated Qwen3 repositories through the hub's real HTTP API:
  GET  /api/models/{org}/{name}/revision/{rev}[?blobs=true]   commit sha and siblings (blobId, size, lfs)
  GET|HEAD /{org}/{name}/resolve/{rev}/{path}                  files; LFS files 302 to /_cdn/{sha256}
  GET|HEAD /_cdn/{sha256}                                      LFS content, with Range support
and a test-only control surface:
  GET /_control?truncate=F&after=N   the next transfer of file F stops after N bytes
  GET /_control?corrupt=F            F is served with its first byte flipped (until reset)
  GET /_control?ignore_range=1       answer Range requests with the whole file (200), as some servers do
  GET /_control?drop=F               the repositories lack file F (until reset)
  GET /_control?hide_blobs=1         the API leaves out blobId/size/lfs, as older hubs and mirrors do
  GET /_control?reset=1              clears faults and the request log
  GET /_log                          the requests seen since: [{"method", "path", "range", "auth"}]
(control requests are not logged).
Prints "PORT <n>" on stdout once listening (pass --port 0 for any free port).
"""
import argparse
import hashlib
import json
import os
import random
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "secret-token"


def safetensors(tensors, seed):
    """The bytes of a safetensors file: {name: (dtype, shape)} with pseudo-random data."""
    rng = random.Random(seed)
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (dtype, shape) in tensors.items():
        n = {"F32": 4, "BF16": 2, "F16": 2}[dtype]
        for d in shape:
            n *= d
        # Bit 6 of each high byte off: a bf16/f16 exponent below all-ones, so no NaN or Inf (refused at load).
        data = bytes(rng.getrandbits(8) & (0xBF if i % 2 else 0xFF) for i in range(n))
        if dtype == "F32":  # keep floats finite: random small values
            data = struct.pack(f"<{n // 4}f", *[rng.uniform(-0.1, 0.1) for _ in range(n // 4)])
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        blobs.append(data)
        offset += n
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def qwen3_tensors(hidden, inter, layers, heads, kv, head_dim, vocab, prefix, dtype):
    t = {f"{prefix}embed_tokens.weight": (dtype, (vocab, hidden)), f"{prefix}norm.weight": (dtype, (hidden,))}
    for i in range(layers):
        p = f"{prefix}layers.{i}."
        t.update({
            p + "input_layernorm.weight": (dtype, (hidden,)),
            p + "post_attention_layernorm.weight": (dtype, (hidden,)),
            p + "self_attn.q_proj.weight": (dtype, (heads * head_dim, hidden)),
            p + "self_attn.k_proj.weight": (dtype, (kv * head_dim, hidden)),
            p + "self_attn.v_proj.weight": (dtype, (kv * head_dim, hidden)),
            p + "self_attn.o_proj.weight": (dtype, (hidden, heads * head_dim)),
            p + "self_attn.q_norm.weight": (dtype, (head_dim,)),
            p + "self_attn.k_norm.weight": (dtype, (head_dim,)),
            p + "mlp.gate_proj.weight": (dtype, (inter, hidden)),
            p + "mlp.up_proj.weight": (dtype, (inter, hidden)),
            p + "mlp.down_proj.weight": (dtype, (hidden, inter)),
        })
    return t


def make_repo(sharded):
    hidden, inter, layers, heads, kv, head_dim, vocab = 32, 48, 2, 4, 2, 16, 1000
    config = {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": hidden,
        "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv, "head_dim": head_dim, "rms_norm_eps": 1e-6, "rope_theta": 1000000,
        "rope_scaling": None, "max_position_embeddings": 512, "vocab_size": vocab,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16", "hidden_act": "silu",
    }
    files = {
        "config.json": json.dumps(config, indent=2).encode(),
        # The download path only moves files; a tokenizer's content is checked by the tokenizer's tests.
        "tokenizer.json": json.dumps({"version": "1.0", "model": {"type": "BPE", "vocab": {}, "merges": []}}).encode(),
        "tokenizer_config.json": json.dumps({"eos_token": "<|endoftext|>"}).encode(),
        "modules.json": json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ]).encode(),
        "1_Pooling/config.json": json.dumps({"word_embedding_dimension": hidden, "pooling_mode_lasttoken": True,
                                             "include_prompt": True}).encode(),
        "config_sentence_transformers.json": json.dumps({"prompts": {"query": "Instruct: x\nQuery:", "document": ""},
                                                         "default_prompt_name": None}).encode(),
        # Files embedserve must not download.
        "README.md": b"# tiny test model\n",
        "pytorch_model.bin": b"\0" * 4096,
        "onnx/model.onnx": b"\0" * 4096,
    }
    tensors = qwen3_tensors(hidden, inter, layers, heads, kv, head_dim, vocab, "model.", "BF16")
    if sharded:
        names = list(tensors)
        half = len(names) // 2
        shards = {
            "model-00001-of-00002.safetensors": {n: tensors[n] for n in names[:half]},
            "model-00002-of-00002.safetensors": {n: tensors[n] for n in names[half:]},
        }
        weight_map = {}
        for i, (fname, part) in enumerate(shards.items()):
            files[fname] = safetensors(part, seed=i)
            weight_map.update({n: fname for n in part})
        files["model.safetensors.index.json"] = json.dumps({"metadata": {"total_size": 0},
                                                           "weight_map": weight_map}).encode()
    else:
        files["model.safetensors"] = safetensors(tensors, seed=7)
    lfs = {f for f in files if f.endswith((".safetensors", ".bin", ".onnx"))}
    commit = hashlib.sha1(b"".join(hashlib.sha1(v).digest() for v in files.values())).hexdigest()
    return {"files": files, "lfs": lfs, "commit": commit}


REPOS = {
    "tiny-org/tiny-embed": make_repo(sharded=True),
    "tiny-org/tiny-single": make_repo(sharded=False),
    "tiny-org/private-embed": make_repo(sharded=False),
}
PRIVATE = {"tiny-org/private-embed"}


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class State:
    lock = threading.Lock()
    log = []
    truncate = {}   # file -> bytes to send before cutting the connection (one-shot)
    corrupt = set()
    hide_blobs = False
    dropped = set()
    ignore_range = False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _record(self):
        with State.lock:
            State.log.append({"method": self.command, "path": self.path, "range": self.headers.get("Range"),
                              "auth": self.headers.get("Authorization")})

    def _send(self, code, body=b"", headers=None, content_type="application/json"):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code, obj, headers=None):
        self._send(code, json.dumps(obj).encode(), headers)

    def _repo(self, repo_id):
        repo = REPOS.get(repo_id)
        if repo is None:
            self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            return None
        if repo_id in PRIVATE and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._json(401, {"error": "Invalid credentials in Authorization header"}, {"X-Error-Code": "RepoNotFound"})
            return None
        return repo

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/")[1:]]
        if parts == ["_control"]:
            return self._control(url.query)
        if parts == ["_log"]:
            with State.lock:
                return self._json(200, State.log)
        self._record()
        if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "revision":
            return self._api(f"{parts[2]}/{parts[3]}", "/".join(parts[5:]), "blobs=true" in url.query)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
        if len(parts) == 2 and parts[0] == "_cdn":
            return self._cdn(parts[1])
        self._json(404, {"error": "no such route"})

    def _control(self, query):
        q = {k: v[0] for k, v in parse_qs(query).items()}
        with State.lock:
            if q.get("reset"):
                State.log.clear()
                State.truncate.clear()
                State.corrupt.clear()
                State.hide_blobs = False
                State.dropped.clear()
                State.ignore_range = False
            if q.get("ignore_range"):
                State.ignore_range = True
            if "drop" in q:
                State.dropped.add(q["drop"])
            if q.get("hide_blobs"):
                State.hide_blobs = True
            if "truncate" in q:
                State.truncate[q["truncate"]] = int(q["after"])
            if "corrupt" in q:
                State.corrupt.add(q["corrupt"])
        self._json(200, {"ok": True})

    def _api(self, repo_id, rev, blobs):
        repo = self._repo(repo_id)
        if repo is None:
            return
        if rev not in ("main", repo["commit"]):
            return self._json(404, {"error": f"Invalid rev id: {rev}"}, {"X-Error-Code": "RevisionNotFound"})
        siblings = []
        for name, data in repo["files"].items():
            if name in State.dropped:
                continue
            s = {"rfilename": name}
            if blobs and not State.hide_blobs:
                s["blobId"] = git_blob_id(data)
                s["size"] = len(data)
                if name in repo["lfs"]:
                    s["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            siblings.append(s)
        self._json(200, {"_id": "0" * 24, "id": repo_id, "modelId": repo_id, "sha": repo["commit"],
                         "private": repo_id in PRIVATE, "siblings": siblings})

    def _resolve(self, repo_id, rev, path):
        repo = self._repo(repo_id)
        if repo is None:
            return
        if rev not in ("main", repo["commit"]):
            return self._json(404, {"error": f"Invalid rev id: {rev}"}, {"X-Error-Code": "RevisionNotFound"})
        data = None if path in State.dropped else repo["files"].get(path)
        headers = {"X-Repo-Commit": repo["commit"]}
        if data is None:
            headers["X-Error-Code"] = "EntryNotFound"
            return self._json(404, {"error": "Entry not found"}, headers)
        if path in repo["lfs"]:
            sha = hashlib.sha256(data).hexdigest()
            # Like the real hub, LFS content lives on another host (here "localhost" for 127.0.0.1): clients
            # must follow the redirect but must not send the token there.
            port = self.server.server_address[1]
            headers.update({"X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data)), "ETag": f'"{sha}"',
                            "Location": f"http://localhost:{port}/_cdn/{sha}"})
            return self._send(302, b"", headers, "text/plain")
        headers["ETag"] = f'"{git_blob_id(data)}"'
        self._content(path, data, headers)

    def _cdn(self, sha):
        for repo in REPOS.values():
            for name, data in repo["files"].items():
                if hashlib.sha256(data).hexdigest() == sha:
                    return self._content(name, data, {"ETag": f'"cdn-{sha[:16]}"'})
        self._json(404, {"error": "no such blob"})

    def _content(self, name, data, headers):
        with State.lock:
            if name in State.corrupt:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            cut = State.truncate.pop(name, None) if self.command == "GET" else None
        start, code = 0, 200
        rng = None if State.ignore_range else self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"}, "text/plain")
            code = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        headers["Accept-Ranges"] = "bytes"
        if cut is None:
            return self._send(code, body, headers, "application/octet-stream")
        # An interrupted transfer: promise the whole body, send part of it, drop the connection.
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:cut])
        self.wfile.flush()
        self.close_connection = True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--exit-on-stdin-eof", action="store_true",
                    help="exit when stdin closes, so a test that dies never leaves the server behind")
    args = ap.parse_args()
    if args.exit_on_stdin_eof:
        def watch_stdin():
            while sys.stdin.buffer.read(4096):
                pass
            os._exit(0)
        threading.Thread(target=watch_stdin, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
