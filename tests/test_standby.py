"""The warm standby drill on SQLite (docs/operations.md, "Backups and a warm standby"), end to
end with real processes: scheduled backup sets, the primary killed, a restore into a new
folder checked and started, peers reconnecting, nothing answered before the set lost; and the
folder lock refusing a restore beside a running node."""

from __future__ import annotations

import dataclasses
import json
import re
import stat
import time
from pathlib import Path

from node import backups
from tests import engines
from tests.cluster import Cluster
from tests.proc import NodeProcess, suanli, wait_until
from tests.test_federation import GY, HZ, pair

# Backup sets copy SQLite's file; on PostgreSQL the database's own tools back it up.
pytestmark = engines.sqlite_only


def scheduled(cluster: Cluster) -> None:
    """Hangzhou takes a backup set every 3 s into backups/ beside its data, keeping three."""
    toml = cluster[HZ].data / "node.toml"
    text = re.sub(r'(?m)^folder = ""$', f'folder = "{cluster.root / "backups"}"', toml.read_text())
    text = re.sub(r"(?m)^interval_minutes = .*$", "interval_minutes = 0.05", text)
    toml.write_text(re.sub(r"(?m)^keep = .*$", "keep = 3", text))


def test_restore_drill_a_standby_takes_over(tmp_path: Path) -> None:
    with pair(tmp_path, before_start=scheduled) as cluster:
        hz, gy = cluster[HZ], cluster[GY]
        folder = cluster.root / "backups"
        cluster.redeem_across(HZ, "startup", GY, "gy-centre", "B-1")
        answered = time.time() * 1000

        # A set taken after that answer (the schedule runs every 3 s; three are kept).
        def newer() -> backups.BackupSet | None:
            found = [s for s in backups.sets(folder, HZ) if s.taken_at_ms > answered]
            return found[-1] if found else None

        latest = wait_until(newer, "a backup set taken after the redemption was answered")
        wait_until(
            lambda: len(backups.sets(folder, HZ)) == 3, "three sets kept, no more", timeout=30
        )
        assert stat.S_IMODE(latest.path.stat().st_mode) == 0o700
        assert stat.S_IMODE((latest.path / "node.key").stat().st_mode) == 0o600
        manifest = json.loads((latest.path / "MANIFEST.json").read_text())
        assert {"suanli.db", "node.toml", "node.key"} <= set(manifest["files"])

        # While the primary serves, a restore into its folder is refused by the folder lock.
        beside = suanli(
            "restore", "--from", str(latest.path), "--data", str(hz.data), "--replace", check=False
        )
        assert beside.returncode == 2 and "another suanli serve" in beside.stderr
        altered = tmp_path / "altered"
        suanli("backup", "--data", str(hz.data), "--to", str(altered))
        (only,) = altered.iterdir()
        (only / "node.toml").write_text((only / "node.toml").read_text() + "\n# edited\n")
        refused = suanli("restore", "--from", str(only), "--data", str(tmp_path / "x"), check=False)
        assert refused.returncode == 2 and "node.toml does not match its manifest" in refused.stderr
        assert not (tmp_path / "x").exists()

        # The primary dies. The standby folder is restored from the set and checked.
        port = hz.process.port
        cluster.kill(HZ)
        standby = tmp_path / "standby"
        out = suanli("restore", "--from", str(latest.path), "--data", str(standby))
        assert "every invariant holds" in out.stdout and "taken at" in out.stdout
        cluster.members[0] = dataclasses.replace(hz, data=standby, process=NodeProcess(standby))
        assert cluster[HZ].data == standby
        cluster[HZ].process.start(None, "--port", str(port))

        # Nothing answered before the set is lost: the capture is in the standby's books.
        holds = cluster[HZ].call("GET", "/v1/vouchers?limit=100", expect=200)["items"]
        assert sum(h["captured_fen"] for h in holds) == 300_000
        # Guiyang reconnects (same card, same endpoint): a new cross-region redemption works.
        token = gy.tokens["gy-centre"]
        status, made = cluster.redeem_across(HZ, "startup", GY, "gy-centre", "B-2", expect=None)
        assert status in (201, 202), made  # 202: Guiyang's channel was still in its backoff
        hold = made["hold"]["id"]
        wait_until(
            lambda: gy.call("GET", f"/v1/holds/{hold}", token, expect=200)["state"] == "captured",
            "Guiyang to reach the standby and settle the redemption",
            timeout=30,
        )
        cluster.wait_agree()
        cluster.check_all()
