"""The worker deployment's generated configuration and routing (no processes started)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from synapse.module_api import NOT_SPAM

from guilds.vocabulary import CALL_MEMBER_EVENT
from guildsctl.synapse import overlay
from guildsctl.workers import (
    CLIENT_WORKER,
    CLIENT_WORKER_ROUTES,
    WRITER_WORKER,
    WorkerPorts,
    routes_to_client_worker,
    shared_config,
    worker_config,
)
from tests.harness.module_api import event, make_api, module

PORTS = WorkerPorts(8008, 18008, 18009, 18010, 18011)


def test_the_router_sends_client_traffic_to_the_client_worker_and_the_rest_to_main() -> None:
    for path in (
        "/_matrix/client/v3/sync",
        "/_matrix/client/v3/rooms/!abc/state/m.room.name/",
        "/_matrix/client/v3/rooms/!abc/send/m.room.message/txn1",
        "/_matrix/client/v3/join/#room:example.org",
        "/_matrix/client/v3/createRoom",
        "/_matrix/client/v1/rooms/!abc/hierarchy",
    ):
        assert routes_to_client_worker(path), path
    for path in (
        "/_synapse/admin/v1/register",
        "/_matrix/client/v3/user/@a:b/account_data/m.direct",
        "/_matrix/client/v3/rooms/!abc/receipt/m.read/$e",
        "/_matrix/client/v3/rooms/!abc/typing/@a:b",
        "/_matrix/client/v3/sendToDevice/m.x/txn",
        "/_synapse/client/pick_username",
    ):
        assert not routes_to_client_worker(path), path


def _shared() -> dict:
    base = overlay(
        server_name="example.org",
        port=PORTS.main_client,
        registration_path=Path("/etc/guilds/registration.yaml"),
        bot_localpart="guilds",
        open_registration=False,
    )
    return shared_config(
        base,
        ports=PORTS,
        redis_dbid=3,
        replication_secret="s3cret",
        log_config_path=Path("/tmp/log.yaml"),
    )


def test_the_shared_config_wires_replication_and_loads_the_module() -> None:
    config = _shared()
    assert config["redis"] == {"enabled": True, "host": "127.0.0.1", "port": 6379, "dbid": 3}
    assert config["instance_map"]["main"]["port"] == PORTS.main_replication
    assert config["instance_map"][WRITER_WORKER]["port"] == PORTS.writer_replication
    assert config["stream_writers"] == {"events": [WRITER_WORKER]}
    assert config["notify_appservices_from_worker"] == WRITER_WORKER
    assert config["public_baseurl"] == f"http://127.0.0.1:{PORTS.public}/"
    resources = [listener["resources"][0]["names"] for listener in config["listeners"]]
    assert resources == [["client"], ["replication"]]
    (module,) = config["modules"]
    assert module["config"] == {"bot_user_id": "@guilds:example.org"}


@pytest.mark.parametrize(
    ("name", "port", "resource"),
    [
        (CLIENT_WORKER, PORTS.client_worker, "client"),
        (WRITER_WORKER, PORTS.writer_replication, "replication"),
    ],
)
def test_each_worker_listens_where_the_shared_config_says(
    name: str, port: int, resource: str
) -> None:
    config = worker_config(name, PORTS, Path("/tmp/log.yaml"))
    assert config["worker_app"] == "synapse.app.generic_worker"
    assert config["worker_name"] == name
    (listener,) = config["worker_listeners"]
    assert (listener["port"], listener["resources"][0]["names"]) == (port, [resource])
    with pytest.raises(ValueError, match="unknown worker"):
        worker_config("nobody", PORTS, Path("/tmp/log.yaml"))


CONFIG = Path(__file__).resolve().parents[2] / "config" / "workers"


def _example(name: str) -> dict:
    return yaml.safe_load((CONFIG / name).read_text(encoding="utf-8"))


def test_the_documented_routes_are_the_ones_the_router_uses() -> None:
    routes = _example("routes.yaml")
    assert routes["worker"] == CLIENT_WORKER
    assert tuple(routes["client_worker_routes"]) == CLIENT_WORKER_ROUTES


def test_the_documented_worker_config_has_the_keys_and_names_guilds_run_writes() -> None:
    documented = _example("homeserver-workers.yaml")
    generated = _shared()
    for key in (
        "redis",
        "worker_replication_secret",
        "instance_map",
        "stream_writers",
        "notify_appservices_from_worker",
        "run_background_tasks_on",
    ):
        assert key in documented, key
        if key not in ("redis", "worker_replication_secret", "instance_map"):
            assert documented[key] == generated[key], key
    assert set(documented["instance_map"]) == set(generated["instance_map"])
    assert set(documented["redis"]) == set(generated["redis"])
    assert documented["modules"] == [
        {"module": "synapse_module.GuildsModule", "config": {"bot_user_id": "@guilds:example.org"}}
    ]
    ports = {m: documented["instance_map"][m]["port"] for m in documented["instance_map"]}
    listening = {
        listener["port"]
        for listener in documented["listeners"]
        if listener["resources"][0]["names"] == ["replication"]
    }
    assert ports["main"] in listening
    for name in (CLIENT_WORKER, WRITER_WORKER):
        worker = _example(f"{name}.yaml")
        assert set(worker) == set(worker_config(name, PORTS, Path("/tmp/log.yaml"))), name
        assert worker["worker_name"] == name
        if name == WRITER_WORKER:
            assert worker["worker_listeners"][0]["port"] == ports[WRITER_WORKER]


async def test_the_module_keeps_no_state_between_calls_and_needs_no_route_of_its_own() -> None:
    """Worker safety: each veto reads the room's current state through Synapse (so a change
    written by another process counts at once: nothing cached to invalidate), and the module's
    one HTTP resource lies under /_synapse/client, which every process serves and every
    reverse proxy already sends to Synapse."""
    api = make_api(worker_name=CLIENT_WORKER, channel={"kind": "text"})
    guilds = module(api)
    call = event(CALL_MEMBER_EVENT, state_key="_@a:here_D")
    assert await guilds.check_event_for_spam(call) != NOT_SPAM
    # Another process turns the channel into a voice channel: the next call sees it.
    api.get_room_state.return_value = make_api(
        channel={"kind": "voice"}
    ).get_room_state.return_value
    assert await guilds.check_event_for_spam(call) == NOT_SPAM
    assert api.get_room_state.await_count == 2
    (path, _), _ = api.register_web_resource.call_args
    assert path.startswith("/_synapse/client/")
    # The one third-party rules callback is check_event_allowed (kicks, bans, unbans), which
    # Synapse runs wherever the event is created, with that process's view of the state.
    api.register_third_party_rules_callbacks.assert_called_once_with(
        check_event_allowed=guilds.check_event_allowed
    )
