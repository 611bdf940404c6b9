"""`guilds run` (what `make run` calls): one command up, Ctrl-C down, state kept, ports named."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.metrics import metrics_url
from guilds.config import load_config
from guildsctl.run_workers import supervise_deployment
from guildsctl.supervise import Supervisor
from guildsctl.synapse import http_ok
from tests.harness.launcher import (
    Launcher,
    get_json,
    launched,
    pids_of,
    processes_mentioning,
    sign_up,
    wait_for,
)
from tests.harness.workers import build_workers_stack


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    yield from launched(tmp_path)


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


def api_answers(url: str, token: str) -> bool:
    request = urllib.request.Request(  # noqa: S310 - the local stack
        f"{url}/_guilds/v1/servers", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def server_created(url: str, token: str, name: str) -> bool:
    """A server made through the API: the bridge and Synapse both work, and together."""
    request = urllib.request.Request(  # noqa: S310 - the local stack
        f"{url}/_guilds/v1/servers",
        data=json.dumps({"name": name}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return bool(response.status == 201)
    except (urllib.error.URLError, OSError):
        return False


def test_run_restarts_a_process_that_dies_and_keeps_serving(launcher: Launcher) -> None:
    # Observation (issue 16): killing Synapse stopped the whole stack, and the message named
    # local/logs/synapse.log, which stayed empty (Synapse wrote local/synapse/homeserver.log).
    launcher.start()
    url = launcher.wait_for_url()
    launcher.follow()
    _, well_known = get_json(f"{url}/.well-known/matrix/client")
    hs = well_known["m.homeserver"]["base_url"]
    token = sign_up(hs, "survivor", "correct horse battery")["access_token"]
    assert api_answers(url, token)
    logs = launcher.state / "logs"

    [synapse] = pids_of(launcher.state, "synapse.app.homeserver")
    os.kill(synapse, signal.SIGKILL)
    said = launcher.wait_for_output("Synapse was killed by SIGKILL")
    assert "starting it again in" in said and str(logs / "synapse.log") in said, said
    # The web origin keeps answering while Synapse is away (the page shows its banner).
    with urllib.request.urlopen(url, timeout=10) as page:  # noqa: S310
        assert page.status == 200
    wait_for(lambda: http_ok(f"{hs}/_matrix/client/versions"), "Synapse answering again")
    wait_for(lambda: server_created(url, token, "after Synapse"), "the API working again")
    launcher.wait_for_output("Synapse started again")
    assert pids_of(launcher.state, "synapse.app.homeserver") not in ([], [synapse])
    # The log the message names is the one Synapse writes, from both of its runs.
    synapse_log = (logs / "synapse.log").read_text(errors="replace")
    assert synapse_log.count("Synapse now listening on TCP port") >= 2, synapse_log[-2000:]

    [bridge] = pids_of(launcher.state, "guildsctl.cli serve")
    os.kill(bridge, signal.SIGKILL)
    said = launcher.wait_for_output("The Guilds bridge and web UI was killed by SIGKILL")
    assert str(logs / "guilds.log") in said, said
    wait_for(lambda: api_answers(url, token), "the API answering after the bridge's restart")
    assert server_created(url, token, "after the bridge")
    assert pids_of(launcher.state, "guildsctl.cli serve") not in ([], [bridge])

    # Ctrl-C while a restart is pending (the bridge's second quick death: 2 s) still leaves
    # nothing behind.
    [bridge] = pids_of(launcher.state, "guildsctl.cli serve")
    os.kill(bridge, signal.SIGKILL)
    wait_for(lambda: bridge not in pids_of(launcher.state, "guildsctl.cli serve"), "its death")
    assert launcher.interrupt() == 0
    assert processes_mentioning(str(launcher.state)) == []


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_run_starts_the_sfu_on_loopback_and_starts_it_again_when_it_dies(
    launcher: Launcher,
) -> None:
    launcher.start()
    launcher.wait_for_url()
    launcher.follow()
    port = launcher.ports["janus"]
    assert listening(port)
    # The bridge is told where it is, with the secrets of this start.
    config = load_config(launcher.state / "guilds.yaml")
    assert config.janus is not None and config.janus.url == f"ws://127.0.0.1:{port}"
    jcfg = (launcher.state / "janus" / "janus.jcfg").read_text()
    assert config.janus.token_secret in jcfg and "token_auth = true" in jcfg
    # Only the VideoRoom plugin and the WebSocket transport load; no admin API anywhere.
    transport = (launcher.state / "janus" / "janus.transport.websockets.jcfg").read_text()
    assert 'ws_ip = "127.0.0.1"' in transport and "admin_ws = false" in transport
    log = (launcher.state / "logs" / "janus.log").read_text(errors="replace")
    assert "Loading plugin 'libjanus_videoroom.so'" in log
    loaded = [line for line in log.splitlines() if "Loading " in line and "plugin" in line]
    assert all("videoroom" in line or "websockets" in line for line in loaded), loaded

    [janus] = pids_of(launcher.state, "janus.jcfg")
    os.kill(janus, signal.SIGKILL)
    said = launcher.wait_for_output("Janus (the SFU) was killed by SIGKILL")
    assert str(launcher.state / "logs" / "janus.log") in said, said
    launcher.wait_for_output("Janus (the SFU) started again")
    wait_for(lambda: listening(port), "Janus listening again")
    assert pids_of(launcher.state, "janus.jcfg") not in ([], [janus])
    assert launcher.interrupt() == 0
    assert processes_mentioning(str(launcher.state)) == []


def test_everything_run_writes_is_private(launcher: Launcher) -> None:
    # Observation (issue 16): homeserver.db (every access token), guilds.db and the logs were
    # 0644. A state folder an earlier version left open is made private too.
    state = launcher.state
    (state / "logs").mkdir(parents=True, mode=0o755)
    state.chmod(0o755)
    (state / "logs").chmod(0o755)
    (state / "logs" / "guilds.log").write_text("an earlier run\n")
    (state / "logs" / "guilds.log").chmod(0o644)

    launcher.start()
    url = launcher.wait_for_url()
    _, well_known = get_json(f"{url}/.well-known/matrix/client")
    hs = well_known["m.homeserver"]["base_url"]
    token = sign_up(hs, "private", "correct horse battery")["access_token"]
    upload = urllib.request.Request(  # noqa: S310 - the local stack
        f"{hs}/_matrix/media/v3/upload?filename=a.txt",
        data=b"user data",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(upload, timeout=10) as response:  # noqa: S310
        assert response.status == 200
    assert launcher.interrupt() == 0

    seen = {p.relative_to(state).as_posix(): p.stat().st_mode for p in state.rglob("*")}
    for expected in (
        "synapse/homeserver.db",
        "synapse/localhost.signing.key",
        "guilds.db",
        "registration.yaml",
        "logs/synapse.log",
        "logs/guilds.log",
        # The SFU's configuration holds its token secret and admin key.
        "janus/janus.jcfg",
        "janus/janus.plugin.videoroom.jcfg",
        "logs/janus.log",
    ):
        assert expected in seen, sorted(seen)
    assert any(name.startswith("synapse/media_store/") for name in seen), sorted(seen)
    open_to_others = {name: oct(mode & 0o777) for name, mode in seen.items() if mode & 0o077} | (
        {".": oct(state.stat().st_mode & 0o777)} if state.stat().st_mode & 0o077 else {}
    )
    assert open_to_others == {}


def written(out: io.StringIO, text: str) -> bool:
    return text in out.getvalue()


async def test_workers_profile_restarts_each_synapse_process_and_the_router(
    tmp_path: Path,
) -> None:
    # The same wiring `guilds run --profile workers` uses (run_workers.supervise_deployment),
    # on a deployment of its own: its databases and Redis number are the test's, not local/'s.
    stack = build_workers_stack(tmp_path)
    out = io.StringIO()
    supervisor = Supervisor(out=out)
    stopping = threading.Event()
    watcher = threading.Thread(target=supervisor.run, args=(stopping,), kwargs={"interval_s": 0.1})
    try:
        supervise_deployment(supervisor, stack.workers)
        watcher.start()
        deployment = stack.workers
        checks = {
            "guilds_client": f"{deployment.client_worker_url}/_matrix/client/versions",
            "guilds_writer": f"http://127.0.0.1:{deployment.ports.writer_replication}/health",
            "router": f"{deployment.url}/_matrix/client/versions",
            "main": f"http://127.0.0.1:{deployment.ports.main_client}/_matrix/client/versions",
        }
        names = {
            "guilds_client": "Synapse's guilds_client worker",
            "guilds_writer": "Synapse's guilds_writer worker",
            "router": "The router",
            "main": "Synapse's main process",
        }
        for process, url in checks.items():
            proc = (
                deployment.router
                if process == "router"
                else deployment.main.proc
                if process == "main"
                else deployment.workers[process]
            )
            assert proc is not None and http_ok(url), process
            proc.kill()
            said = f"{names[process]} was killed by SIGKILL"
            wait_for(partial(written, out, said), f"{process}'s death being reported")
            wait_for(partial(http_ok, url), f"{process} answering again")
        # Every process answers at the end, the client worker through the router too.
        assert all(http_ok(url) for url in checks.values())
        assert out.getvalue().count("started again") == len(checks)
    finally:
        stopping.set()
        if watcher.is_alive():
            watcher.join(timeout=10)
        supervisor.stop()
        await stack.close()
