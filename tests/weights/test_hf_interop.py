"""embedserve and huggingface_hub share one cache: each reuses what the other downloaded.

Runs against fake_hub.py on loopback; needs huggingface_hub (a dependency of the tokenizers package) and
EMBEDSERVE_RESOLVE_BIN, the weights_resolve_tool binary (CTest sets it).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

huggingface_hub = pytest.importorskip("huggingface_hub")

HERE = Path(__file__).resolve().parent
REPO = "tiny-org/tiny-embed"
NEEDED = ["config.json", "tokenizer.json", "tokenizer_config.json", "modules.json",
          "config_sentence_transformers.json", "1_Pooling/config.json", "model.safetensors.index.json",
          "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]


@pytest.fixture(scope="module")
def hub():
    proc = subprocess.Popen([sys.executable, str(HERE / "fake_hub.py"), "--port", "0", "--exit-on-stdin-eof"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("PORT "), line
    yield f"http://127.0.0.1:{int(line.split()[1])}"
    proc.terminate()
    proc.wait()


def env_for(hub, cache, **extra):
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub, HF_HUB_CACHE=str(cache), no_proxy="127.0.0.1,localhost", HF_HUB_DISABLE_TELEMETRY="1")
    env.update(extra)
    return env


def resolve(env):
    binary = os.environ.get("EMBEDSERVE_RESOLVE_BIN")
    if not binary:
        pytest.skip("EMBEDSERVE_RESOLVE_BIN is not set (run through ctest)")
    return subprocess.run([binary, REPO], env=env, capture_output=True, text=True, timeout=120)


def hf_download(env, filenames, local_files_only):
    """hf_hub_download in a child process, so HF_* variables are read fresh by huggingface_hub."""
    code = ("import sys, huggingface_hub as h\n"
            "for f in sys.argv[3:]: print(h.hf_hub_download(sys.argv[1], f, local_files_only=sys.argv[2] == '1'))")
    r = subprocess.run([sys.executable, "-c", code, REPO, "1" if local_files_only else "0", *filenames], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return [Path(line) for line in r.stdout.split()]


def test_huggingface_hub_reads_what_embedserve_downloaded(hub, tmp_path):
    r = resolve(env_for(hub, tmp_path))
    assert r.returncode == 0, r.stderr
    snapshot = Path(r.stdout.strip())
    offline = env_for(hub, tmp_path, HF_HUB_OFFLINE="1")
    for f, path in zip(NEEDED, hf_download(offline, NEEDED, local_files_only=True)):
        assert path == snapshot / f
    # huggingface_hub's own cache scan finds one healthy repo with our files.
    code = ("import sys, huggingface_hub as h; info = h.scan_cache_dir(sys.argv[1]); "
            "print(len(info.warnings), [(r.repo_id, r.nb_files) for r in info.repos])")
    scan = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=offline, capture_output=True, text=True)
    assert scan.returncode == 0, scan.stderr
    assert scan.stdout.strip() == f"0 [('{REPO}', {len(NEEDED)})]"


def test_embedserve_reads_what_huggingface_hub_downloaded(hub, tmp_path):
    online = env_for(hub, tmp_path)
    paths = hf_download(online, NEEDED, local_files_only=False)
    assert len(paths) == len(NEEDED)
    r = resolve(env_for(hub, tmp_path, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == paths[0].parent


def test_missing_libcurl_is_a_clear_error_only_when_downloading(hub, tmp_path):
    # The library is loaded only for a download: a local directory resolves without it.
    model = tmp_path / "local"
    model.mkdir()
    (model / "config.json").write_text("{}")
    env = env_for(hub, tmp_path / "hub", EMBEDSERVE_LIBCURL=str(tmp_path / "no-libcurl.so"))
    binary = os.environ.get("EMBEDSERVE_RESOLVE_BIN")
    if not binary:
        pytest.skip("EMBEDSERVE_RESOLVE_BIN is not set (run through ctest)")
    local = subprocess.run([binary, str(model)], env=env, capture_output=True, text=True, timeout=60)
    assert local.returncode == 0, local.stderr
    r = resolve(env)
    assert r.returncode == 1
    assert f"downloading {REPO} needs libcurl (apt-get install libcurl4)" in r.stderr, r.stderr


def test_concurrent_downloads_of_one_model_agree(hub, tmp_path):
    """Two processes fetching the same model take turns on each blob (huggingface_hub's .locks flock)."""
    binary = os.environ.get("EMBEDSERVE_RESOLVE_BIN")
    if not binary:
        pytest.skip("EMBEDSERVE_RESOLVE_BIN is not set (run through ctest)")
    env = env_for(hub, tmp_path)
    procs = [subprocess.Popen([binary, REPO], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert len({o[0] for o in outs}) == 1
    snapshot = Path(outs[0][0].strip())
    blobs = list((tmp_path / "models--tiny-org--tiny-embed" / "blobs").iterdir())
    assert len(blobs) == len(NEEDED) and not [b for b in blobs if b.name.endswith(".incomplete")]
    assert all((snapshot / f).is_file() for f in NEEDED)
