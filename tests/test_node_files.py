"""A node process's files and logs: private at rest, one server per data folder, and no
credential in any log line whatever a client sends. Real ``suanli`` processes."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from node.provision import init_node
from tests.cluster import http, one_city
from tests.conftest import policy_text
from tests.proc import NodeProcess, suanli


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _init(tmp_path: Path) -> tuple[Path, str]:
    data = tmp_path / "hz"
    old = os.umask(0o022)  # as a careless shell would have it: the node must not rely on it
    try:
        token = init_node(data, "330100", "Hangzhou", policy_text(), 0)
    finally:
        os.umask(old)
    return data, token


def test_files_at_rest_are_private(tmp_path: Path) -> None:
    data, token = _init(tmp_path)
    assert _mode(data) == 0o700
    for name in ("node.toml", "node.key", "suanli.db"):
        assert _mode(data / name) == 0o600, name
    node = NodeProcess(data).start()
    try:
        http("GET", f"{node.url}/v1/budget", token)
        for name in ("suanli.db-wal", "suanli.db-shm", "serve.json", "serve.lock"):
            assert _mode(data / name) == 0o600, name
        backup = tmp_path / "books.db"
        suanli("backup", "--data", str(data), str(backup))
        assert _mode(backup) == 0o600
    finally:
        assert node.stop() == 0
    # A folder made by an older version (0644 files) is made private when the node opens it.
    for name in ("suanli.db", "suanli.db-wal"):
        if (data / name).exists():
            os.chmod(data / name, 0o644)
    suanli("check", "--data", str(data))
    assert _mode(data / "suanli.db") == 0o600


def test_one_server_per_data_folder(tmp_path: Path) -> None:
    data, _ = _init(tmp_path)
    first = NodeProcess(data).start()
    try:
        state = (data / "serve.json").read_text()
        assert first.proc is not None
        second = suanli("serve", "--data", str(data), "--port", "0", check=False)
        assert second.returncode == 2
        assert f"another suanli serve (pid {first.proc.pid}) is running" in second.stderr
        assert (data / "serve.json").read_text() == state  # the first one's, untouched
        assert http("GET", f"{first.url}/health")[0] == 200
    finally:
        assert first.stop() == 0
    # Stopped (or killed), the folder is free again.
    again = NodeProcess(data).start()
    again.kill()
    NodeProcess(data).start().stop()


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_no_credential_reaches_the_log_whatever_a_client_sends(tmp_path: Path) -> None:
    data, op = _init(tmp_path)
    node = NodeProcess(data).start(None, "--log-format", "json")
    secrets: list[str] = [op]
    try:
        city = one_city(node.url, op)
        holder, provider, code = city.holder, city.provider, city.code
        secrets += [holder, provider, code]

        hostile: list[bytes] = []
        for token in (op, holder, provider):
            hostile += [
                # a stray control byte in the header: refused by aiohttp's parser
                b"GET /v1/budget HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                + token.encode()
                + b"\x01\r\n\r\n",
                # a header line over 8 KiB, the token first
                b"GET /v1/budget HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                + token.encode()
                + b"A" * 9000
                + b"\r\n\r\n",
                # the token in a request line that does not parse
                b"GET /v1/\x00" + token.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                b"\x16\x03\x01" + token.encode() + b"\r\n\r\n",  # not HTTP at all
            ]
        # the one-time code in a body that is refused, and in a header where a token goes
        body_with_code = json.dumps({"code": code, "order_id": "O\x01", "order_amount_fen": 1})
        hostile.append(
            b"POST /v1/holds HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\n"
            b"Authorization: Bearer " + provider.encode() + b"\r\n"
            b"Content-Length: "
            + str(len(body_with_code)).encode()
            + b"\r\n\r\n"
            + body_with_code.encode()
        )
        hostile.append(
            b"GET /v1/budget HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
            + code.encode()
            + b"\r\nX-Request-Id: "
            + code.encode()
            + b"\r\n\r\n"
        )
        for request in hostile * 3:
            answer = _raw(node.port, request)
            if answer:  # a JSON error, never the parser's text or the client's header back
                head, _, payload = answer.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1."), answer[:200]
                # (X-Request-Id echoes the caller's own header, by design)
                assert all(s.encode() not in payload for s in secrets), answer[:300]
                assert b"Traceback" not in payload
        # a valid request still works afterwards
        assert http("GET", f"{node.url}/v1/budget", op)[0] == 200
    finally:
        assert node.stop() == 0
    log = node.log()
    assert log, "the node wrote no log"
    for secret in secrets:
        assert secret not in log, f"a credential ({secret[:6]}…) is in the log"
        # the random part alone: after "sac_<region>_" for a code, after "<kind>_" for a token
        # (split by position, not by "_": the random part may hold "_" itself)
        assert secret.split("_", 2 if secret.startswith("sac_") else 1)[-1] not in log
    lines = log.splitlines()
    entries = [json.loads(line) for line in lines]  # one JSON object per line, every line
    assert all(e["region"] == "330100" and e["ts"].endswith("Z") for e in entries)
    refused = [e for e in entries if "unreadable HTTP request" in e["message"]]
    assert refused and all(e["level"] == "INFO" for e in refused)
    assert not any("Traceback" in e.get("exception", "") for e in refused)


def test_redaction_covers_every_credential_format() -> None:
    from node.logs import redact

    samples: dict[str, Any] = {
        "Authorization: Bearer slo_AbC-123_xyz\\x01tail": "slo_AbC-123_xyz",
        "b'Bearer slh_Q1w2E3r4'": "slh_Q1w2E3r4",
        "code=sac_330100_Zz9-8_7 refused": "Zz9-8_7",
        "authorization=Basic dXNlcjpwYXNz": "dXNlcjpwYXNz",
        "token slp_-_-_ leaked": "slp_-_-_",
    }
    for text, secret in samples.items():
        out = redact(text)
        assert secret not in out and "[redacted]" in out, out
    assert re.fullmatch(r"nothing secret here", redact("nothing secret here"))


ISO = re.compile(r"^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$")


def test_times_for_people_are_iso_8601_everywhere(tmp_path: Path) -> None:
    """Exports, CLI listings and the journal show times as ISO 8601 UTC, never epoch ms."""
    data, op = _init(tmp_path)
    suanli("settle", "close", "--data", str(data))
    listed = [
        json.loads(line)
        for line in suanli("token", "list", "--data", str(data)).stdout.splitlines()
    ]
    assert listed and all(ISO.match(t["created_at"]) for t in listed)
    keys = [
        json.loads(line) for line in suanli("key", "list", "--data", str(data)).stdout.splitlines()
    ]
    # a first key has no start (null: valid from the beginning) and no end yet
    assert keys and all(k["not_before"] is None and k["not_after"] is None for k in keys)
    windows = json.loads(suanli("settle", "windows", "--data", str(data)).stdout)
    closed = [w for w in windows if w["state"] != "open"]
    assert closed and all(ISO.match(w[f]) for w in closed for f in ("start", "end", "closed_at"))
    for report in ("audit", "ledger", "decisions", "vouchers", "captures"):
        out = suanli("export", "--data", str(data), report, "--format", "json").stdout
        for row in map(json.loads, out.splitlines()):
            for name, value in row.items():
                if name == "at" or name.endswith("_at"):
                    assert value is None or ISO.match(value), (report, name, value)
    node = NodeProcess(data).start()
    try:
        for kind in ("ledger", "events", "audit"):
            _, journal = http("GET", f"{node.url}/v1/journal?kind={kind}", op)
            assert all(ISO.match(item["at"]) for item in journal["items"]), journal
        _, audit = http("GET", f"{node.url}/v1/journal?kind=audit", op)
        assert audit["items"]
    finally:
        node.stop()


def test_json_logs_stay_json_whatever_python_prints(tmp_path: Path) -> None:
    """A warning, an exception in a thread, one in a finalizer and one nobody caught in the
    main thread: with JSON logs, each is one JSON object, its traceback a field, never raw
    lines on stderr (a log shipper would drop or split them)."""
    import json

    script = tmp_path / "crash.py"
    script.write_text(
        "import threading, warnings\n"
        "from node import logs\n"
        "logs.setup('330100', fmt='json')\n"
        "warnings.warn('a warning')\n"
        "t = threading.Thread(target=lambda: 1 / 0, name='worker'); t.start(); t.join()\n"
        "class Bad:\n"
        "    def __del__(self):\n"
        "        raise ValueError('in a finalizer')\n"
        "Bad()\n"
        "raise RuntimeError('nobody caught this')\n"
    )
    out = run_script(script)
    assert out.returncode == 1
    entries = [json.loads(line) for line in out.stderr.splitlines()]  # every line is JSON
    said = {e["message"].split(":")[0]: e for e in entries}
    assert any("a warning" in e["message"] for e in entries)
    assert "ZeroDivisionError" in said["uncaught ZeroDivisionError in thread worker"]["exception"]
    assert any("in a finalizer" in e.get("exception", "") for e in entries)
    assert "nobody caught this" in said["uncaught RuntimeError"]["exception"]
    assert all(e["region"] == "330100" for e in entries)


def test_a_library_printing_a_traceback_still_gives_json_lines(tmp_path: Path) -> None:
    """gRPC logs a cancelled call and then prints its traceback to stderr itself: whatever a
    library writes there becomes log records, a traceback one record with it as a field."""
    import json

    script = tmp_path / "stray.py"
    script.write_text(
        "import sys, traceback\n"
        "from node import logs\n"
        "logs.setup('330100', fmt='json')\n"
        "try:\n"
        "    raise KeyError('boom')\n"
        "except KeyError:\n"
        "    traceback.print_exc()\n"
        "print('a stray line', file=sys.stderr)\n"
    )
    out = run_script(script)
    entries = [json.loads(line) for line in out.stderr.splitlines()]
    assert len(entries) == 2, out.stderr
    assert entries[0]["message"] == "KeyError: 'boom' (printed by a library)"
    assert entries[0]["exception"].startswith("Traceback (most recent call last):")
    assert entries[1]["message"] == "a stray line" and entries[1]["level"] == "WARNING"


def run_script(script: Path) -> subprocess.CompletedProcess[str]:
    """A Python script run from the project's root, as a node's process would be."""
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )
