"""The package as an operator installs it: a wheel built from the sources, installed
(non-editable) into a fresh virtual environment, used from a folder outside the checkout.

The wheel is built from a copy of the sources (nothing is written into the checkout) and
installed without its dependencies, which come from the project's environment through a
``.pth`` line: the dependencies are not what is tested, the package's own files are, and the
test then needs no network. It checks that the installed ``node`` is the wheel's, not the
checkout's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

from node import VERSION

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "node", "federation", "protos", "docs")


def run(*args: str | Path, cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    out = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, f"{' '.join(map(str, args))}: {out.stdout}\n{out.stderr}"
    return out.stdout


def test_the_installed_wheel_inits_serves_and_runs_the_demo(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(origin, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SUANLI_DATA")}
    pip = (sys.executable, "-m", "pip")
    dist = tmp_path / "dist"
    run(
        *pip,
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        dist,
        src,
        cwd=tmp_path,
        env=env,
    )
    wheel = next(dist.glob("suanli-*.whl"))
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    run(
        *pip,
        "--python",
        python,
        "install",
        "--no-deps",
        "--no-index",
        "-q",
        wheel,
        cwd=tmp_path,
        env=env,
    )
    site = Path(
        run(
            python,
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
            cwd=tmp_path,
            env=env,
        ).strip()
    )
    (site / "_suanli_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    away = tmp_path / "elsewhere"  # not the checkout, not the source copy
    away.mkdir()
    where = run(python, "-c", "import node; print(node.__file__)", cwd=away, env=env)
    assert where.startswith(str(site)), where
    suanli = venv / "bin" / "suanli"
    assert run(suanli, "--version", cwd=away, env=env).startswith(f"suanli {VERSION} ")
    # The systemd unit's Documentation= (under /opt/suanli, the venv the unit expects) exists.
    unit = (ROOT / "ops" / "systemd" / "suanli.service").read_text()
    documentation = unit.split("Documentation=file:///opt/suanli/", 1)[1].split()[0]
    assert (venv / documentation).is_file()

    # A city from the shipped example policy, then serving it.
    run(suanli, "policy", "example", "hangzhou", "--out", "hz.toml", cwd=away, env=env)
    made = run(
        suanli,
        "init",
        "--data",
        "hz",
        "--region",
        "330100",
        "--name",
        "杭州",
        "--policy",
        "hz.toml",
        "--port",
        "0",
        cwd=away,
        env=env,
    )
    assert "operator token" in made
    with open(away / "serve.log", "wb") as log:
        node = subprocess.Popen(
            [suanli, "serve", "--data", "hz"],
            cwd=away,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        state = away / "hz" / "serve.json"
        deadline = time.monotonic() + 60
        while not state.exists():
            assert node.poll() is None, (away / "serve.log").read_text()
            assert time.monotonic() < deadline, "the installed node did not start"
            time.sleep(0.05)
        port = json.loads(state.read_text())["http_port"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
            health = json.loads(resp.read())
        assert health["version"] == VERSION and health["policy_years"] == [2026]
        # The platform's templates and static files are in the wheel.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui/signin", timeout=10) as resp:
            assert "访问令牌" in resp.read().decode()
        echarts = f"http://127.0.0.1:{port}/ui/static/vendor/echarts/echarts.min.js"
        with urllib.request.urlopen(echarts, timeout=10) as resp:
            assert len(resp.read()) > 500_000
    finally:
        node.terminate()
        assert node.wait(timeout=30) == 0

    # The demo: three cities from the package's own data, books checked, then it exits.
    demo = run(suanli, "demo", "--once", cwd=away, env=env, timeout=300)
    assert "Every node's books balance and every pair of cities agrees." in demo
