"""Running `guilds run` from a test: its output read as it comes, its processes found by PID.

For tests/integration/test_run.py and the browser test of the outage banner under `guilds run`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.harness.stack import free_port

REPO = Path(__file__).resolve().parents[2]


def processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line mentions `text` (our state folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = (entry / "status").read_text()
        except OSError:
            continue
        if text in cmdline and "State:\tZ" not in status:
            pids.append(int(entry.name))
    return pids


class Launcher:
    def __init__(self, state: Path, ports: dict[str, int]) -> None:
        self.state = state
        self.ports = ports
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self.reader: threading.Thread | None = None

    def start(self) -> subprocess.Popen[str]:
        self.output = []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "guildsctl.cli",
                "run",
                "--state-dir",
                str(self.state),
                "--homeserver-port",
                str(self.ports["homeserver"]),
                "--appservice-port",
                str(self.ports["appservice"]),
                "--web-port",
                str(self.ports["web"]),
                "--janus-port",
                str(self.ports["janus"]),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return self.proc

    def wait_for_url(self, deadline_s: float = 120) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if line.startswith("Guilds is running: open "):
                return line.split("open ", 1)[1].split()[0]
        raise AssertionError("no URL line; output was:\n" + "".join(self.output))

    def follow(self) -> None:
        """Keep reading the output in the background, for `wait_for_output`."""
        assert self.proc is not None and self.proc.stdout is not None
        stdout = self.proc.stdout

        def read() -> None:
            for line in stdout:
                self.output.append(line)

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()

    def wait_for_output(self, text: str, deadline_s: float = 60) -> str:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            for line in list(self.output):
                if text in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} in the output:\n" + "".join(self.output))

    def interrupt(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        if self.reader is not None:
            self.proc.wait(timeout=60)
            self.reader.join(timeout=10)
            self.reader = None
            assert self.proc.stdout is not None
            self.proc.stdout.close()
        else:
            rest, _ = self.proc.communicate(timeout=60)
            self.output.append(rest)
        return self.proc.returncode


def launched(tmp_path: Path) -> Iterator[Launcher]:
    """The body of a test module's `launcher` fixture: free ports, and nothing left behind."""
    ports = {
        "homeserver": free_port(),
        "appservice": free_port(),
        "web": free_port(),
        "janus": free_port(),
    }
    launcher = Launcher(tmp_path / "local", ports)
    yield launcher
    if launcher.proc is not None and launcher.proc.poll() is None:
        launcher.proc.kill()
        launcher.proc.wait()
    for pid in processes_mentioning(str(launcher.state)):
        os.kill(pid, signal.SIGKILL)


def get_json(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"only the local stack is called here, not {url}")
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - checked above
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - checked above
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def sign_up(hs: str, username: str, password: str) -> dict:
    """Open registration with the dummy stage, as the web UI does."""
    status, first = get_json(
        f"{hs}/_matrix/client/v3/register", {"username": username, "password": password}
    )
    assert status == 401, first
    body = {
        "username": username,
        "password": password,
        "auth": {"type": "m.login.dummy", "session": first["session"]},
    }
    status, answer = get_json(f"{hs}/_matrix/client/v3/register", body)
    assert status == 200, answer
    return answer


def pids_of(state: Path, marker: str) -> list[int]:
    """Live processes of this stack whose command line holds `marker`."""
    found = []
    for pid in processes_mentioning(str(state)):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            found.append(pid)
    return found


def wait_for(check: Callable[[], bool], what: str, deadline_s: float = 90) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {deadline_s} s")
