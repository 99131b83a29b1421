"""The container image, built with `make image` and run as a three-city federation in podman
containers, the way ops/compose.yml and docs/operations.md ("In containers") describe it:

* each city's data folder on a named volume, initialised with the image itself (`init`, the
  first operator token read from its output), cards exchanged with fingerprints;
* three serving containers on one podman network, each reachable from the others at its own
  address (the REST API and gRPC bound on the container's interfaces) and from the host
  through a published port; never root inside;
* the HEALTHCHECK passing; the demo's scenario (issuance, local and cross-region redemptions,
  a refused double subsidy) and settlement (every pair statement countersigned, the same
  netting everywhere) run through the published ports; `suanli check` clean in every
  container.

No image registry is reachable here: the base image is a Debian root made with debootstrap
from Debian's packages and `podman import`ed, unless SUANLI_IMAGE_BASE names another.
`make image-test` runs this (outside `make test`: it takes a few minutes).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.clock import SystemClock, year_of
from node.tools.demo import City, scenario, settle
from tests.cluster import free_port
from tests.proc import wait_until

ROOT = Path(__file__).resolve().parents[2]
BASE = os.environ.get("SUANLI_IMAGE_BASE", "localhost/suanli-base:bookworm")
# These machines refuse podman's default limits; Debian's runc is the runtime.
PODMAN = ["podman", "--runtime", "runc"]
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
CITIES = [
    ("330100", "Hangzhou", "hangzhou"),
    ("370200", "Qingdao", "qingdao"),
    ("520100", "Guiyang", "guiyang"),
]


def podman(
    *args: str, input: str | None = None, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [*PODMAN, *args], input=input, capture_output=True, text=True, timeout=timeout
    )
    if check and out.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)}: {out.returncode}\n{out.stdout}\n{out.stderr}"
        )
    return out


def base_image() -> str:
    """The base image: made here once (debootstrap, then podman import) if it is not there."""
    if podman("image", "exists", BASE, check=False).returncode == 0:
        return BASE
    assert shutil.which("debootstrap"), "make image-tools installs Debian's debootstrap"
    with tempfile.TemporaryDirectory(prefix="suanli-rootfs-") as rootfs:
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                "bookworm",
                rootfs,
                "http://deb.debian.org/debian",
            ],
            check=True,
            capture_output=True,
            timeout=900,
        )
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            [*PODMAN, "import", "-", BASE],
            stdin=tar.stdout,
            check=True,
            capture_output=True,
            timeout=600,
        )
        assert tar.wait() == 0
    return BASE


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    tag = f"localhost/suanli:test-{os.getpid()}"
    built = subprocess.run(
        ["make", "image", f"BASE={base_image()}", f"IMAGE={tag}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    yield tag
    podman("rmi", "-f", tag, check=False)


def test_three_cities_in_containers(image: str) -> None:
    run_id = f"suanli-it-{os.getpid()}"
    subnet = random.randint(100, 250)
    network = run_id
    year = year_of(SystemClock().now_ms())
    cities: dict[str, City] = {}
    names: dict[str, str] = {}
    try:
        podman("network", "create", "--subnet", f"10.89.{subnet}.0/24", network)
        # Each city: a volume, initialised with the image itself (the operator's first step).
        for i, (region, name, policy) in enumerate(CITIES):
            volume, ip = f"{run_id}-{policy}", f"10.89.{subnet}.{11 + i}"
            podman("volume", "create", volume)
            text = podman("run", "--rm", *LIMITS, image, "policy", "example", policy).stdout
            text = re.sub(r"(?m)^fiscal_year = \d+", f"fiscal_year = {year}", text)
            made = podman(
                "run",
                "--rm",
                "-i",
                *LIMITS,
                "-v",
                f"{volume}:/var/lib/suanli",
                image,
                "init",
                "--data",
                "/var/lib/suanli/node",
                "--region",
                region,
                "--name",
                name,
                "--policy",
                "/dev/stdin",
                "--port",
                "8330",
                "--grpc-port",
                "9330",
                "--grpc-host",
                "0.0.0.0",
                "--endpoint",
                f"{ip}:9330",
                "--plaintext",
                "--operator",
                "image-test",
                input=text,
            ).stdout
            token = made.rsplit("operator token (shown once, stored hashed): ", 1)[1].split()[0]
            cities[region] = City(region, name, policy, free_port(), 9330, operator=token)
            names[region] = volume
        # Cards exchanged, each imported after comparing its fingerprint.
        cards = {}
        for region, volume in names.items():
            out = podman(
                "run",
                "--rm",
                *LIMITS,
                "-v",
                f"{volume}:/var/lib/suanli",
                image,
                "card",
                "export",
                "--data",
                "/var/lib/suanli/node",
            )
            fingerprint = out.stderr.split("fingerprint: ", 1)[1].split(" (read it")[0]
            cards[region] = (out.stdout, fingerprint)
        for region, volume in names.items():
            for other, (card, fingerprint) in cards.items():
                if other != region:
                    podman(
                        "run",
                        "--rm",
                        "-i",
                        *LIMITS,
                        "-v",
                        f"{volume}:/var/lib/suanli",
                        image,
                        "peer",
                        "add",
                        "--data",
                        "/var/lib/suanli/node",
                        "/dev/stdin",
                        "--fingerprint",
                        fingerprint,
                        "--exposure-cap-fen",
                        "5000000000",
                        input=card,
                    )
        # Three serving containers, each at its address on the network, REST published.
        for i, (region, _, policy) in enumerate(CITIES):
            podman(
                "run",
                "-d",
                *LIMITS,
                "--name",
                f"{run_id}-{policy}",
                "--network",
                network,
                "--ip",
                f"10.89.{subnet}.{11 + i}",
                "-p",
                f"127.0.0.1:{cities[region].http_port}:8330",
                "-v",
                f"{names[region]}:/var/lib/suanli",
                image,
            )
        for _, _, policy in CITIES:
            container = f"{run_id}-{policy}"
            wait_until(
                lambda c=container: podman("healthcheck", "run", c, check=False).returncode == 0,
                f"{container}'s HEALTHCHECK to pass",
                timeout=90,
            )
            assert podman("exec", container, "id", "-u").stdout.strip() != "0"
        result = asyncio.run(scenario(cities))
        assert result["double"][1] == "order_already_subsidised"
        # Every redemption of the scenario (local and across the containers) was captured.
        assert result["flows"] and all(
            h["state"] in ("held", "captured") for _, _, h in result["flows"]
        )
        assert {h["state"] for _, _, h in result["flows"]} >= {"captured"}
        settled = asyncio.run(settle(cities, timeout=120))
        assert settled["agreed"], settled
        assert settled["netting"]["transfers"], settled["netting"]
        for _, _, policy in CITIES:
            checked = podman(
                "exec", f"{run_id}-{policy}", "suanli", "check", "--data", "/var/lib/suanli/node"
            )
            assert "every invariant holds" in checked.stdout
            logs = podman("logs", f"{run_id}-{policy}").stderr.splitlines()
            assert logs and all(json.loads(line)["region"] for line in logs if line.strip())
    finally:
        for _, _, policy in CITIES:
            podman("rm", "-f", "-t", "5", f"{run_id}-{policy}", check=False)
            podman("volume", "rm", "-f", f"{run_id}-{policy}", check=False)
        podman("network", "rm", "-f", network, check=False)
