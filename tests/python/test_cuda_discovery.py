"""embedserve._cuda: pip's cuBLAS 13 is found on the import path and handed to the engine, unless the user chose."""
from __future__ import annotations

from embedserve._cuda import pip_cublas_folder, pip_nccl_folder, with_pip_cublas


def fake_wheel(root, folder):
    lib = root.joinpath(*folder.split("/"))
    lib.mkdir(parents=True)
    (lib / "libcublas.so.13").write_bytes(b"")
    return lib


def test_cuda13_wheels_layout_is_found_before_the_older_one(tmp_path):
    older = fake_wheel(tmp_path / "site-a", "nvidia/cublas/lib")
    assert pip_cublas_folder([str(tmp_path / "empty"), str(tmp_path / "site-a")]) == str(older)
    cu13 = fake_wheel(tmp_path / "site-b", "nvidia/cu13/lib")
    assert pip_cublas_folder([str(tmp_path / "site-b"), str(tmp_path / "site-a")]) == str(cu13)
    assert pip_cublas_folder([str(tmp_path / "empty")]) is None


def test_the_users_choice_wins(tmp_path, monkeypatch):
    lib = fake_wheel(tmp_path, "nvidia/cu13/lib")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert with_pip_cublas({})["EMBEDSERVE_CUBLAS_PATH"] == str(lib)
    assert with_pip_cublas({"EMBEDSERVE_CUBLAS_PATH": "/opt/cuda/lib64"})["EMBEDSERVE_CUBLAS_PATH"] == "/opt/cuda/lib64"


def test_pip_nccl_is_found_and_the_users_choice_wins(tmp_path, monkeypatch):
    lib = tmp_path.joinpath("nvidia", "nccl", "lib")
    lib.mkdir(parents=True)
    (lib / "libnccl.so.2").write_bytes(b"")
    assert pip_nccl_folder([str(tmp_path / "empty"), str(tmp_path)]) == str(lib)
    assert pip_nccl_folder([str(tmp_path / "empty")]) is None
    monkeypatch.syspath_prepend(str(tmp_path))
    assert with_pip_cublas({})["EMBEDSERVE_NCCL_PATH"] == str(lib)
    assert with_pip_cublas({"EMBEDSERVE_NCCL_PATH": "/opt/nccl"})["EMBEDSERVE_NCCL_PATH"] == "/opt/nccl"
