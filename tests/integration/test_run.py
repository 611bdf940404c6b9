"""`guilds run` (what `make run` calls): one command up, Ctrl-C down, state kept, ports named."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.metrics import metrics_url
from guilds.config import load_config
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

    def interrupt(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        rest, _ = self.proc.communicate(timeout=60)
        self.output.append(rest)
        return self.proc.returncode


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    ports = {"homeserver": free_port(), "appservice": free_port(), "web": free_port()}
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


def test_run_starts_everything_stops_cleanly_and_keeps_state(launcher: Launcher) -> None:
    launcher.start()
    url = launcher.wait_for_url()
    assert url == f"http://127.0.0.1:{launcher.ports['web']}"

    # One origin: the UI, the provisioning API and client discovery.
    with urllib.request.urlopen(url, timeout=10) as page:  # noqa: S310
        assert page.status == 200 and "text/html" in page.headers["Content-Type"]
    status, version = get_json(f"{url}/_guilds/v1/version")
    assert status == 200 and version["version"]
    # Metrics are on, on a loopback port of their own that the launcher does not announce.
    metrics = load_config(launcher.state / "guilds.yaml").metrics
    assert metrics.enabled and metrics.listen.host == "127.0.0.1"
    assert metrics.listen.port not in launcher.ports.values()
    with urllib.request.urlopen(metrics_url(metrics.listen), timeout=10) as scraped:  # noqa: S310
        families = {f.name for f in text_string_to_metric_families(scraped.read().decode())}
    assert "guilds_servers_loaded" in families
    assert "metrics" not in "".join(launcher.output).lower()
    status, well_known = get_json(f"{url}/.well-known/matrix/client")
    hs = well_known["m.homeserver"]["base_url"]
    assert hs == f"http://127.0.0.1:{launcher.ports['homeserver']}"

    # Open registration locally: a newcomer signs up at once.
    account = sign_up(hs, "newcomer", "correct horse battery")
    assert account["user_id"] == "@newcomer:localhost"
    # The bot was registered and given its profile by the bridge.
    status, profile = get_json(f"{hs}/_matrix/client/v3/profile/@guilds:localhost")
    assert status == 200 and profile.get("displayname") == "Guilds"

    children = processes_mentioning(str(launcher.state))
    assert len(children) >= 2, children  # Synapse and guilds serve (plus the launcher itself)
    assert launcher.interrupt() == 0
    # Ctrl-C stops every process it started: no orphaned Synapse.
    assert processes_mentioning(str(launcher.state)) == []

    # Secrets are private.
    for name in ("registration.yaml", "guilds.yaml", "synapse/homeserver.yaml"):
        assert (launcher.state / name).stat().st_mode & 0o077 == 0, name

    # A second run reuses the state: the account is still there.
    started = time.monotonic()
    launcher.start()
    assert launcher.wait_for_url() == url
    assert time.monotonic() - started < 60
    status, login = get_json(
        f"{hs}/_matrix/client/v3/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "newcomer"},
            "password": "correct horse battery",
        },
    )
    assert status == 200, login
    assert "Generating" not in "".join(launcher.output)
    assert launcher.interrupt() == 0
    assert processes_mentioning(str(launcher.state)) == []


@pytest.mark.parametrize(
    ("busy", "setting"), [("web", "GUILDS_WEB_PORT"), ("homeserver", "GUILDS_HOMESERVER_PORT")]
)
def test_port_in_use_is_explained(launcher: Launcher, busy: str, setting: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", launcher.ports[busy]))
        sock.listen()
        proc = launcher.start()
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    port = launcher.ports[busy]
    assert f"Port {port} is already in use" in out
    assert setting in out and "Traceback" not in out
    assert processes_mentioning(str(launcher.state)) == []
