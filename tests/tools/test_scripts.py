"""scripts/run.sh and scripts/setup.sh on a machine whose apt-get, dpkg-query and cmake are fakes that log their calls:
run.sh installs and builds only what the binary needs, talks briefly on stderr, and waits for a held apt lock."""
import os
import shutil
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD_ONLY = {"cmake", "ninja-build", "nlohmann-json3-dev", "libboost1.74-dev", "libopenblas-dev", "unicode-data",
              "libcurl4-openssl-dev", "python3"}
TEST_ONLY = {"libgtest-dev", "libgmock-dev", "libbenchmark-dev", "clang-14", "manpages-de", "wrk", "python3-pip"}

FAKES = {
    # Nothing is installed yet: every package is reported missing.
    "dpkg-query": "exit 1",
    "sudo": 'exec "$@"',
    # Refuses once with apt's own lock message while $FAKE_LOG/locked exists and no lock timeout was given.
    "apt-get": """echo "$*" >> "$FAKE_LOG/apt.log"
if [ -e "$FAKE_LOG/locked" ] && [[ "$*" == *Lock::Timeout=0* ]]; then
  rm "$FAKE_LOG/locked"
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2
  exit 100
fi
echo "apt-get chatter that belongs on /dev/null\"""",
    "cmake": """echo "$*" >> "$FAKE_LOG/cmake.log"
if [ "$1" = --build ]; then for i in 1 2 3; do echo "[$i/3] Building CXX object src/x$i.cc.o"; done; fi""",
}


def make_machine(tmp_path):
    repo, fake_bin, log = tmp_path / "repo", tmp_path / "bin", tmp_path / "log"
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    for d in (fake_bin, log, repo / "build"):
        d.mkdir(parents=True, exist_ok=True)
    for name, body in FAKES.items():
        (fake_bin / name).write_text("#!/usr/bin/env bash\n" + body + "\n")
        (fake_bin / name).chmod(0o755)
    binary = repo / "build" / "embedserve"
    binary.write_text('#!/usr/bin/env bash\necho "embedserve ran: $*"\n')
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    # ccache hidden, so build.sh's configure line does not depend on this machine.
    env = {**os.environ, "PATH": f"{fake_bin}:/usr/bin:/bin", "FAKE_LOG": str(log), "PYTHON": "true"}
    return repo, log, env


def installed(log):
    return {p for line in (log / "apt.log").read_text().splitlines() if "install" in line.split() for p in line.split()}


def test_run_sh_installs_and_builds_only_the_binary(tmp_path):
    repo, log, env = make_machine(tmp_path)
    r = subprocess.run(["bash", repo / "scripts" / "run.sh", "--version"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "embedserve ran: --version\n", "setup and build must leave the command's stdout alone"
    packages = installed(log)
    assert BUILD_ONLY <= packages and not TEST_ONLY & packages, packages
    cmake = (log / "cmake.log").read_text()
    assert "-DEMBEDSERVE_TESTS=OFF" in cmake and "--target embedserve" in cmake, cmake
    assert "setup: installing" in r.stderr and "build: compiling embedserve" in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) <= 3 and "chatter" not in r.stderr, r.stderr


def test_setup_without_arguments_installs_the_test_tools_too(tmp_path):
    repo, log, env = make_machine(tmp_path)
    r = subprocess.run(["bash", repo / "scripts" / "setup.sh"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert BUILD_ONLY | TEST_ONLY <= installed(log)


def test_a_held_apt_lock_is_waited_for_with_a_message(tmp_path):
    repo, log, env = make_machine(tmp_path)
    (log / "locked").touch()
    r = subprocess.run(["bash", repo / "scripts" / "setup.sh", "--build"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "waiting for it" in r.stderr and "4242" not in r.stderr, r.stderr
    calls = (log / "apt.log").read_text().splitlines()
    assert "DPkg::Lock::Timeout=600 update" in calls[1], calls
