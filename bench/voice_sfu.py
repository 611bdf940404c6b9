"""Voice channels on Janus: the VideoRoom (a selective forwarder: everyone receives every other
speaker's Opus stream) against the AudioBridge (a mixer: Janus decodes every speaker, mixes, and
sends each participant one Opus stream of the others), for 2, 4, 8, 16 and 25 people.

Every participant is synthetic (aiortc, tests/harness/synthetic.py's 440 Hz tone), publishing
and receiving: in the VideoRoom each subscribes to every other (one subscriber handle carrying
N − 1 audio streams, as the browser's multistream would), in the AudioBridge each receives its
mix. The listeners do not decode what they receive (the client's cost is not the server's, and
one Python process could not decode 25 × 24 Opus streams on this machine's cores): packets are
counted and dropped.

A/B in one process, interleaved per size (VideoRoom of N, then AudioBridge of N, on the same
Janus): for each,
- join: the N-th participant, credentials in hand, from opening its Janus session to the first
  audio packet from each of the N − 1 others (VideoRoom) or of its mix (AudioBridge: a mix is one
  stream, so "from each" cannot be told apart there); `--trials` times, leaving in between;
- CPU: Janus's own CPU time (from /proc) over a window with all N in and every stream flowing,
  per participant; the machine's load average (`os.getloadavg()`) at its end.

The VideoRoom participants take their credentials from the bridge (`POST …/sfu` of a voice
channel) like the web client; the bridge issues none for the AudioBridge (it is not used by
Guilds), so the bench signs the AudioBridge's tokens itself with Janus's secrets, in the same
scheme (docs/CALLS.md "Voice: VideoRoom or AudioBridge").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nio
from aiortc import RTCPeerConnection, RTCSessionDescription

from bench.common import (
    Figure,
    Target,
    bench_stack,
    cpu_seconds,
    fmt,
    log,
    parse_args,
    spread,
    summarize,
)
from bridge.services.sfu import sign_token
from guildsctl.janus import LocalJanus
from guildsctl.synapse import stop
from tests.harness.api import Api, create_server, join_server
from tests.harness.sfu import JanusSession, Refresh, janus_session, keep_alive, start_test_janus
from tests.harness.stack import Stack, User
from tests.harness.synthetic import ToneTrack

SIZES = (2, 4, 8, 16, 25)
VIDEOROOM = "janus.plugin.videoroom"
AUDIOBRIDGE = "janus.plugin.audiobridge"
MEDIA_DEADLINE_S = 60.0


class _Discard:
    """Stands in for an aiortc receiver's decoder queue: frames are dropped, not decoded (the
    stop signal, None, still reaches the decoder thread so that it ends)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def put(self, item: Any) -> None:
        if item is None:
            self.inner.put(None)

    def get(self) -> Any:
        return self.inner.get()


def undecoded(pc: RTCPeerConnection) -> None:
    for receiver in pc.getReceivers():
        name = "_RTCRtpReceiver__decoder_queue"
        setattr(receiver, name, _Discard(getattr(receiver, name)))


async def receiving(pc: RTCPeerConnection) -> int:
    """How many of `pc`'s receivers have had an audio packet."""
    count = 0
    for receiver in pc.getReceivers():
        report = await receiver.getStats()
        if any(
            getattr(s, "type", "") == "inbound-rtp" and getattr(s, "packetsReceived", 0) > 0
            for s in report.values()
        ):
            count += 1
    return count


async def wait_receiving(pc: RTCPeerConnection, streams: int) -> None:
    deadline = time.monotonic() + MEDIA_DEADLINE_S
    while await receiving(pc) < streams:
        if time.monotonic() > deadline:
            raise RuntimeError(f"audio from {await receiving(pc)} of {streams} in time")
        await asyncio.sleep(0.025)


async def message(session: JanusSession, handle: int, body: dict[str, Any], jsep: Any = None):
    request: dict[str, Any] = {"janus": "message", "handle_id": handle, "body": body}
    if jsep is not None:
        request["jsep"] = {"type": jsep.type, "sdp": jsep.sdp}
    answer = await session.request(request)
    data = answer.get("plugindata", {}).get("data", {})
    if "error" in data:
        raise RuntimeError(f"Janus refused {body.get('request')}: {data['error']}")
    return answer


async def attach(session: JanusSession, plugin: str) -> int:
    attached = await session.request({"janus": "attach", "plugin": plugin})
    return int(attached["data"]["id"])


class Voice:
    """One synthetic voice participant: a Janus session, a tone sent, audio received."""

    def __init__(self, url: str, token: str, refresh: Refresh | None = None) -> None:
        self.url = url
        self.token = token
        self.refresh = refresh
        self.pcs: list[RTCPeerConnection] = []
        self.session: JanusSession | None = None
        self._exit = contextlib.AsyncExitStack()

    async def open(self) -> JanusSession:
        self.session = await self._exit.enter_async_context(janus_session(self.url, self.token))
        created = await self.session.request({"janus": "create"})
        self.session.session_id = created["data"]["id"]
        task = asyncio.create_task(keep_alive(self.session, self.refresh))
        self._exit.push_async_callback(_cancel, task)
        return self.session

    async def publish(self, handle: int, join: dict[str, Any], configure: dict[str, Any]) -> Any:
        """Join with `join`, then send the tone with `configure` (and an offer); the answer
        to the join."""
        assert self.session is not None
        joined = await message(self.session, handle, join)
        pc = RTCPeerConnection()
        self.pcs.append(pc)
        pc.addTrack(ToneTrack())
        await pc.setLocalDescription(await pc.createOffer())
        answer = await message(self.session, handle, configure, pc.localDescription)
        jsep = answer["jsep"]
        await pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], jsep["type"]))
        undecoded(pc)
        return joined

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()
        if self.session is not None and self.session.session_id is not None:
            with contextlib.suppress(Exception):
                await self.session.request({"janus": "destroy"})
        await self._exit.aclose()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class VideoRoomVoice(Voice):
    """Publishes on the VideoRoom with the bridge's credentials; subscribes to given feeds."""

    def __init__(self, creds: dict[str, Any], refresh: Refresh) -> None:
        super().__init__(creds["focus"]["url"], creds["token"], refresh)
        self.creds = creds
        self.private_id: Any = None
        self.listener: RTCPeerConnection | None = None

    @property
    def feed(self) -> str:
        return str(self.creds["participant_id"])

    async def enter(self) -> None:
        session = await self.open()
        handle = await attach(session, VIDEOROOM)
        joined = await self.publish(
            handle,
            {
                "request": "join",
                "ptype": "publisher",
                "room": self.creds["room"],
                "id": self.feed,
                "token": self.creds["room_token"],
            },
            {"request": "configure", "audio": True, "video": False},
        )
        self.private_id = joined["plugindata"]["data"].get("private_id")

    async def listen(self, feeds: list[str]) -> RTCPeerConnection:
        """One subscriber handle with the `feeds`' audio (Janus offers, aiortc answers)."""
        assert self.session is not None
        if self.refresh is not None:
            # The room token of the credentials this participant entered with may be older than
            # the bridge's 3 minutes by now.
            self.creds["room_token"] = (await self.refresh())["room_token"]
        handle = await attach(self.session, VIDEOROOM)
        offer = await message(
            self.session,
            handle,
            {
                "request": "join",
                "ptype": "subscriber",
                "room": self.creds["room"],
                "streams": [{"feed": feed} for feed in feeds],
                "private_id": self.private_id,
                "token": self.creds["room_token"],
            },
        )
        pc = RTCPeerConnection()
        self.pcs.append(pc)
        self.listener = pc
        await pc.setRemoteDescription(
            RTCSessionDescription(offer["jsep"]["sdp"], offer["jsep"]["type"])
        )
        undecoded(pc)
        await pc.setLocalDescription(await pc.createAnswer())
        await message(self.session, handle, {"request": "start"}, pc.localDescription)
        return pc


class AudioBridgeVoice(Voice):
    """Joins an AudioBridge room; its one peer connection sends the tone, receives the mix."""

    def __init__(self, janus: LocalJanus, room: str, room_token: str, ident: str) -> None:
        token = sign_token(janus.token_secret, "janus", (AUDIOBRIDGE,), 3600, time.time())
        super().__init__(janus.ws_url, token)
        self.room = room
        self.room_token = room_token
        self.ident = ident

    async def enter(self) -> RTCPeerConnection:
        session = await self.open()
        handle = await attach(session, AUDIOBRIDGE)
        await self.publish(
            handle,
            {"request": "join", "room": self.room, "id": self.ident, "token": self.room_token},
            {"request": "configure", "muted": False},
        )
        return self.pcs[0]


async def audiobridge_room(janus: LocalJanus) -> tuple[str, str]:
    """A private AudioBridge room only the bench's token opens (made with the admin key)."""
    room, room_token = f"voice-{secrets.token_hex(6)}", secrets.token_hex(16)
    token = sign_token(janus.token_secret, "janus", (AUDIOBRIDGE,), 3600, time.time())
    async with janus_session(janus.ws_url, token) as session:
        await session.attach(AUDIOBRIDGE)
        created = await session.videoroom(
            {
                "request": "create",
                "room": room,
                "admin_key": janus.admin_key,
                "secret": secrets.token_hex(16),
                "is_private": True,
                "allowed": [room_token],
                "sampling_rate": 48000,
                "audiolevel_event": False,
                "permanent": False,
            }
        )
        if created.get("audiobridge") != "created":
            raise RuntimeError(f"AudioBridge room not created: {created}")
        await session.request({"janus": "destroy"})
    return room, room_token


async def cpu_window(janus_pid: int, seconds: float) -> dict[str, Any]:
    before, started = cpu_seconds(janus_pid), time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - started
    return {
        "janus_cores": (cpu_seconds(janus_pid) - before) / wall,
        "wall_s": wall,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


@contextlib.asynccontextmanager
async def closing(voices: list[Voice]) -> AsyncIterator[list[Voice]]:
    try:
        yield voices
    finally:
        await asyncio.gather(*(v.close() for v in voices), return_exceptions=True)


class Scene:
    def __init__(self, stack: Stack, janus: LocalJanus, pid: int, sid: str, channel: str) -> None:
        self.stack = stack
        self.janus = janus
        self.pid = pid
        self.sid = sid
        self.channel = channel
        self.users: list[User] = []

    def refresher(self, index: int) -> Refresh:
        return lambda: self.creds(index)

    async def creds(self, index: int) -> dict[str, Any]:
        while len(self.users) <= index:
            user = await self.stack.register_user()
            await join_server(self.stack, self.sid, user)
            async with self.stack.nio_client(user) as client:
                joined = await client.join(self.channel)
                if not isinstance(joined, nio.JoinResponse):
                    raise RuntimeError(f"{user.user_id} could not join the channel: {joined}")
            self.users.append(user)
        user = self.users[index]
        status, creds = await Api(self.stack, user).call(
            "POST",
            f"/servers/{self.sid}/channels/{self.channel}/sfu",
            {"device_id": user.device_id},
        )
        if status != 200:
            raise RuntimeError(f"no SFU credentials: {status} {creds}")
        return dict(creds)


async def videoroom_size(scene: Scene, size: int, trials: int, window: float) -> dict[str, Any]:
    residents: list[VideoRoomVoice] = []
    async with closing(residents):  # type: ignore[arg-type]
        # Credentials fetched just before each enters (the bridge's tokens last 3 minutes).
        for index in range(size - 1):
            residents.append(VideoRoomVoice(await scene.creds(index), scene.refresher(index)))
            await residents[-1].enter()
        joins: list[float] = []
        for trial in range(trials):
            joiner = VideoRoomVoice(await scene.creds(size - 1), scene.refresher(size - 1))
            started = time.monotonic()
            try:
                await joiner.enter()
                if residents:
                    pc = await joiner.listen([v.feed for v in residents])
                    await wait_receiving(pc, size - 1)
                joins.append((time.monotonic() - started) * 1000)
                if trial < trials - 1:
                    await joiner.close()
                    continue
                # All N in: everyone hears every other.
                everyone = [*residents, joiner]
                for voice in residents:
                    others = [v.feed for v in everyone if v is not voice]
                    await wait_receiving(await voice.listen(others), size - 1)
                await asyncio.sleep(window / 3)
                cpu = await cpu_window(scene.pid, window)
            finally:
                await joiner.close()
    return {"join_ms": joins, "cpu": cpu, "streams": size * (size - 1)}


async def audiobridge_size(scene: Scene, size: int, trials: int, window: float) -> dict[str, Any]:
    room, room_token = await audiobridge_room(scene.janus)
    residents = [AudioBridgeVoice(scene.janus, room, room_token, f"p{i}") for i in range(size - 1)]
    async with closing(list(residents)):
        for voice in residents:
            await wait_receiving(await voice.enter(), 1)
        joins: list[float] = []
        for trial in range(trials):
            joiner = AudioBridgeVoice(scene.janus, room, room_token, f"j{trial}")
            started = time.monotonic()
            try:
                await wait_receiving(await joiner.enter(), 1)
                joins.append((time.monotonic() - started) * 1000)
                if trial < trials - 1:
                    continue
                await asyncio.sleep(window / 3)
                cpu = await cpu_window(scene.pid, window)
            finally:
                await joiner.close()
    return {"join_ms": joins, "cpu": cpu, "streams": size}


def extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default=None, help="participants (default 2,4,8,16,25)")
    parser.add_argument("--trials", type=int, default=None, help="joins per size (default 3)")
    parser.add_argument("--cpu-seconds", type=float, default=None, help="CPU window (10 s)")


async def main(args: argparse.Namespace) -> Figure:
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [2] if args.quick else SIZES
    trials = args.trials or (1 if args.quick else 3)
    window = args.cpu_seconds or (1.0 if args.quick else 10.0)
    figure = Figure(
        "voice_sfu",
        "Voice channels: Janus VideoRoom (A, forwarding) vs AudioBridge (B, mixing)",
        [
            "participants",
            "join, VideoRoom ms (A)",
            "join, AudioBridge ms (B)",
            "join ratio A/B",
            "Janus CPU per participant, VideoRoom (A)",
            "Janus CPU per participant, AudioBridge (B)",
            "CPU ratio A/B",
            "load average",
        ],
        params={"sizes": sizes, "trials": trials, "cpu_window_s": window},
    )
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="guilds-bench-voice-") as tmp:
        root = Path(tmp)
        (root / "logs").mkdir()
        proc, janus = start_test_janus(root, audiobridge=True)
        try:
            config = {"sfu": janus.guilds_sfu_section()}
            async with bench_stack(args.backend, admin_config=config) as stack:
                owner = await stack.register_user()
                server = await create_server(stack, owner, f"Voice {secrets.token_hex(2)}")
                sid = server["server_id"]
                status, answer = await Api(stack, owner).call(
                    "POST", f"/servers/{sid}/channels", {"name": "bench-voice", "kind": "voice"}
                )
                if status != 201:
                    raise RuntimeError(f"no voice channel: {status} {answer}")
                scene = Scene(stack, janus, proc.pid, sid, str(answer["channel_id"]))
                stopped: set[str] = set()
                for size in sizes:
                    out = results.setdefault(str(size), {})
                    for name, run in (
                        ("videoroom", videoroom_size),
                        ("audiobridge", audiobridge_size),
                    ):
                        if name in stopped:
                            continue
                        log(f"voice: {name}, {size} participants")
                        try:
                            entry = await run(scene, size, trials, window)
                        except Exception as exc:  # noqa: BLE001 - a size that cannot run is reported
                            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
                            log(f"  {name} {size}: stopped, {exc!r}")
                            stopped.add(name)
                            continue
                        entry["join"] = summarize(entry["join_ms"])
                        entry["janus_cores_per_participant"] = entry["cpu"]["janus_cores"] / size
                        out[name] = entry
                        log(
                            f"  {name} {size}: join p50 {entry['join']['p50']:.0f} ms, Janus "
                            f"{entry['cpu']['janus_cores']:.3f} cores, "
                            f"load {entry['cpu']['loadavg']}"
                        )
        finally:
            stop(proc)
    figure.results = results
    for size in sizes:
        figure.rows.append(row(size, results.get(str(size), {})))
    figure.targets.append(
        Target(
            "voice transport",
            "no numeric target: the cheaper transport per participant at equal join time",
            "; ".join(f"{s}: {cpu_ratio(results.get(str(s), {}))}" for s in sizes),
            None,
        )
    )
    figure.notes.append(
        "All participants synthetic (aiortc), receiving without decoding; VideoRoom: every one "
        "subscribes to every other (N × (N − 1) forwarded Opus streams); AudioBridge: every "
        "one receives its own mix (N mixes encoded, N streams decoded by Janus)."
    )
    return figure


def cpu_ratio(entry: dict[str, Any]) -> str:
    """Janus's CPU per participant, VideoRoom / AudioBridge, of one size."""
    a, b = entry.get("videoroom", {}), entry.get("audiobridge", {})
    if "janus_cores_per_participant" not in a or not b.get("janus_cores_per_participant"):
        return "–"
    return fmt(a["janus_cores_per_participant"] / b["janus_cores_per_participant"], 3)


def row(size: int, entry: dict[str, Any]) -> list[Any]:
    a, b = entry.get("videoroom", {}), entry.get("audiobridge", {})

    def join(side: dict[str, Any]) -> str:
        return spread(side["join"], 4) if "join" in side else side.get("error", "–")[:40]

    def cpu(side: dict[str, Any]) -> str:
        share = side.get("janus_cores_per_participant")
        return f"{share * 100:.2f} % of a core" if share is not None else "–"

    both = "join" in a and "join" in b
    join_ratio = fmt(a["join"]["median"] / b["join"]["median"], 3) if both else "–"
    load = (a.get("cpu") or b.get("cpu") or {}).get("loadavg", "–")
    return [size, join(a), join(b), join_ratio, cpu(a), cpu(b), cpu_ratio(entry), load]


def run() -> None:
    args = parse_args("voice_sfu", __doc__, extra_args)
    figure = asyncio.run(main(args))
    figure.print()
    figure.write(args)


if __name__ == "__main__":
    run()
