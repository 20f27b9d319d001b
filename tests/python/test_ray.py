"""embedserve.ray.Embedder on a local Ray cluster of two worker nodes: a worker killed mid-run loses no row and
duplicates none, and every vector is bitwise the single-process one."""
from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import embedserve  # noqa: E402
import embedserve.ray  # noqa: E402
from conftest import HIDDEN  # noqa: E402

ROWS = 100_000
INPUT_FILES = 20
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu 世界 café".split()


def corpus_text(i: int) -> str:
    """Row i's text: a few words chosen by i, so lengths (and batches) vary."""
    return f"row {i}: " + " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(1 + i % 9))


@pytest.fixture
def cluster():
    """A head that runs nothing (0 CPUs) and two worker nodes on loopback, each with a CPU for its Embedder actor
    and one for the read and write tasks (with one, the actors would hold every CPU and the reads never run)."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(2):
        c.add_node(num_cpus=2)
    ray.init(address=c.address, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


def embedder_pids() -> list[int]:
    """Processes of Embedder actors, by the title Ray gives an actor's worker ("ray::MapWorker(MapBatches(Embedder))").
    Read from /proc rather than Ray's state API, which needs the dashboard."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    title = f.read().split(b"\0")[0]
            except OSError:
                continue
            if title.startswith(b"ray::MapWorker(") and b"Embedder" in title:
                pids.append(int(entry))
    return pids


def kill_one_embedder_when_output_appears(out_dir, done: threading.Event, report: dict) -> None:
    """SIGKILLs one Embedder actor's process once the job has written some output but is not finished."""
    deadline = time.monotonic() + 120
    while not done.is_set() and time.monotonic() < deadline:
        written = [f for f in os.listdir(out_dir) if f.endswith(".parquet")] if os.path.isdir(out_dir) else []
        pids = embedder_pids()
        if written and pids:
            report["files_before_kill"] = len(written)
            report["pid"] = pids[0]
            os.kill(pids[0], signal.SIGKILL)
            report["killed_before_done"] = not done.is_set()
            return
        time.sleep(0.05)


def test_a_killed_worker_loses_and_duplicates_no_row(cluster, tiny_model, tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    ids = np.arange(ROWS, dtype=np.int64)
    texts = [corpus_text(i) for i in range(ROWS)]
    per_file = ROWS // INPUT_FILES
    for f in range(INPUT_FILES):
        part = slice(f * per_file, (f + 1) * per_file)
        pq.write_table(pa.table({"id": ids[part], "text": texts[part]}), in_dir / f"part-{f:02d}.parquet")

    # Ray merges small files into one block; 20 blocks give both actors work and the run a middle to be killed in.
    ds = ray.data.read_parquet(str(in_dir)).repartition(INPUT_FILES)
    ds = ds.map_batches(embedserve.ray.Embedder, fn_constructor_args=(str(tiny_model),),
                        fn_constructor_kwargs={"device": "cpu", "threads": 1}, batch_format="pyarrow",
                        batch_size=500, compute=ray.data.ActorPoolStrategy(size=2), num_cpus=1)
    done, report = threading.Event(), {}
    killer = threading.Thread(target=kill_one_embedder_when_output_appears, args=(str(out_dir), done, report))
    killer.start()
    try:
        ds.write_parquet(str(out_dir))
    finally:
        done.set()
        killer.join()
    assert report.get("killed_before_done"), f"no Embedder was killed while the job ran: {report}"
    print(f"killed Embedder pid {report['pid']} after {report['files_before_kill']} of "
          f"{len(list(out_dir.glob('*.parquet')))} output files")

    table = pq.read_table(out_dir)
    got_ids = table["id"].to_numpy()
    assert len(got_ids) == ROWS and np.array_equal(np.sort(got_ids), ids), \
        f"{len(got_ids)} rows for {ROWS}: some row is missing or written twice"
    got = np.asarray(table["embedding"].combine_chunks().flatten(), dtype=np.float32).reshape(ROWS, HIDDEN)
    got = got[np.argsort(got_ids)]
    texts_out = np.asarray(table["text"].to_pylist(), dtype=object)[np.argsort(got_ids)]
    assert texts_out[12345] == texts[12345]

    single = embedserve.Engine(tiny_model, device="cpu").encode(texts)
    assert np.array_equal(got.view(np.uint32), single.view(np.uint32)), "a vector differs from the single-process run"
