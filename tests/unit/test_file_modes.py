"""Files that hold secrets, tokens or users' data are readable by their owner only.

Observation (issue 16): homeserver.db, guilds.db and the logs were 0644. The end-to-end check
after a real `guilds run` is tests/integration/test_run.py; these are the pieces.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.engine.migrations import migrate
from bridge.engine.store import Database
from guildsctl.configgen import write_yaml
from guildsctl.run import make_private
from guildsctl.synapse import spawn


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most shells have, so a private mode is ours and not the environment's."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("usual_umask")
async def test_the_bridge_database_and_its_wal_are_private(tmp_path: Path) -> None:
    db = await Database.open(f"sqlite:///{tmp_path / 'guilds.db'}")
    try:
        await migrate(db)
        modes = {
            name: oct(mode(tmp_path / name))
            for name in os.listdir(tmp_path)
            if name.startswith("guilds.db")
        }
    finally:
        await db.close()
    assert "guilds.db-wal" in modes
    assert modes == dict.fromkeys(modes, "0o600")


@pytest.mark.usefixtures("usual_umask")
def test_yaml_private_always_and_the_rest_as_the_umask_says(tmp_path: Path) -> None:
    write_yaml(tmp_path / "secret.yaml", {"as_token": "x"}, private=True)
    write_yaml(tmp_path / "plain.yaml", {"a": 1})
    assert mode(tmp_path / "secret.yaml") == 0o600
    assert mode(tmp_path / "plain.yaml") == 0o644
    os.umask(0o077)
    write_yaml(tmp_path / "plain.yaml", {"a": 2})
    assert mode(tmp_path / "plain.yaml") == 0o600


@pytest.mark.usefixtures("usual_umask")
def test_a_spawned_process_writes_private_files_and_a_private_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "child.log"
    log.parent.mkdir(mode=0o755)
    log.write_text("an earlier run\n")
    log.chmod(0o644)
    code = "import os; open('data.db', 'w').write('x'); os.mkdir('media'); print('done')"
    proc = spawn([sys.executable, "-c", code], log_path=log, cwd=tmp_path)
    assert proc.wait(timeout=60) == 0
    assert log.read_text() == "an earlier run\ndone\n"
    assert mode(log) == 0o600
    assert mode(log.parent) == 0o700
    assert mode(tmp_path / "data.db") == 0o600
    assert mode(tmp_path / "media") == 0o700


def test_a_state_folder_left_open_is_made_private(tmp_path: Path) -> None:
    state = tmp_path / "local"
    (state / "synapse" / "media_store").mkdir(parents=True)
    (state / "synapse" / "homeserver.db").write_text("tokens")
    for path, wanted in (
        (state, 0o755),
        (state / "synapse", 0o775),
        (state / "synapse" / "media_store", 0o755),
        (state / "synapse" / "homeserver.db", 0o644),
    ):
        path.chmod(wanted)
    make_private(state)
    assert mode(state) == 0o700
    assert mode(state / "synapse") == 0o700
    assert mode(state / "synapse" / "media_store") == 0o700
    assert mode(state / "synapse" / "homeserver.db") == 0o600
