"""Synthetic call participants: a Matrix user who joins a channel's SFU call without a browser.

Each gets credentials from the bridge like the web UI does (`POST …/sfu`), writes its MatrixRTC
membership naming the Janus focus, and publishes a generated tone and a generated moving picture
to the VideoRoom with aiortc (WebRTC in Python). Many fit where one browser page would: they
decode nothing and encode small frames. They receive nothing; the browsers beside them measure.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import functools
import math
import time
from array import array
from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import VideoStreamTrack
from av import AudioFrame, VideoFrame

from guilds.vocabulary import CALL_MEMBER_EVENT
from tests.harness.api import Api
from tests.harness.sfu import JanusSession, janus_session, keep_alive
from tests.harness.stack import Stack, User

SAMPLE_RATE = 48_000
SAMPLES = 960  # 20 ms, Opus's frame
TONE_HZ = 440.0


@functools.cache
def tone_second(amplitude: int) -> bytes:
    """One second of the tone at `amplitude`, computed once (the bench runs dozens of these
    participants at once)."""
    samples = (
        amplitude * math.sin(2 * math.pi * TONE_HZ * i / SAMPLE_RATE) for i in range(SAMPLE_RATE)
    )
    return array("h", (int(sample) for sample in samples)).tobytes()


class ToneTrack(MediaStreamTrack):
    """A 440 Hz tone, paced in real time (browsers measure its audio level); silence (the same
    packets, all zero) with `amplitude` 0."""

    kind = "audio"

    def __init__(self, amplitude: int = 6000) -> None:
        super().__init__()
        self.amplitude = amplitude
        self._start: float | None = None
        self._sent = 0

    async def recv(self) -> AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._sent += SAMPLES
            wait = self._start + self._sent / SAMPLE_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        # One second of the tone is a whole number of its periods: it loops seamlessly.
        start = self._sent % SAMPLE_RATE * 2
        pcm = tone_second(self.amplitude)
        frame = AudioFrame(format="s16", layout="mono", samples=SAMPLES)
        frame.planes[0].update(pcm[start : start + SAMPLES * 2])
        frame.pts = self._sent
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        return frame


class PictureTrack(VideoStreamTrack):
    """A small picture whose brightness changes every frame (so every frame is encoded)."""

    def __init__(self, width: int = 160, height: int = 120) -> None:
        super().__init__()
        self.width, self.height = width, height
        self._count = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=self.width, height=self.height, format="yuv420p")
        self._count += 1
        for index, plane in enumerate(frame.planes):
            value = (self._count * 3) % 256 if index == 0 else 128
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        return frame


class SyntheticParticipant:
    """One user's device in a channel's SFU call; `async with` joins, leaving on exit."""

    def __init__(
        self,
        stack: Stack,
        user: User,
        server_id: str,
        channel_id: str,
        *,
        video: bool,
        silent: bool = False,
    ) -> None:
        self.stack = stack
        self.silent = silent
        self.user = user
        self.server_id = server_id
        self.channel_id = channel_id
        self.video = video
        self.pc: RTCPeerConnection | None = None
        self.joined_at: float | None = None
        self._session: contextlib.AbstractAsyncContextManager[JanusSession] | None = None
        self._keepalive: asyncio.Task[None] | None = None

    def _member_path(self) -> str:
        key = f"_{self.user.user_id}_{self.user.device_id}_m.call"
        return f"/_matrix/client/v3/rooms/{self.channel_id}/state/{CALL_MEMBER_EVENT}/{key}"

    async def _write_membership(self, content: dict[str, Any]) -> None:
        assert self.stack.http is not None
        async with self.stack.http.put(
            f"{self.stack.hs_url}{self._member_path()}",
            json=content,
            headers={"Authorization": f"Bearer {self.user.access_token}"},
        ) as response:
            assert response.status == 200, await response.text()

    async def __aenter__(self) -> SyntheticParticipant:
        creds = await self._credentials()
        self._session = janus_session(creds["focus"]["url"], creds["token"])
        session = await self._session.__aenter__()
        await session.attach()
        joined = await session.videoroom(
            {
                "request": "join",
                "ptype": "publisher",
                "room": creds["room"],
                "id": creds["participant_id"],
                "token": creds["room_token"],
            }
        )
        assert joined.get("videoroom") == "joined", joined
        pc = RTCPeerConnection()
        self.pc = pc
        pc.addTrack(ToneTrack(0 if self.silent else 6000))
        if self.video:
            pc.addTrack(PictureTrack())
        # aiortc gathers every candidate before the description is set: no trickle needed.
        await pc.setLocalDescription(await pc.createOffer())
        answer = await session.request(
            {
                "janus": "message",
                "handle_id": session.handle_id,
                "body": {"request": "configure", "audio": True, "video": self.video},
                "jsep": {"type": pc.localDescription.type, "sdp": pc.localDescription.sdp},
            }
        )
        jsep = answer.get("jsep")
        assert jsep, answer
        await pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], jsep["type"]))
        self._keepalive = asyncio.create_task(keep_alive(session, self._credentials))
        now = int(time.time() * 1000)
        await self._write_membership(
            {
                "application": "m.call",
                "call_id": "",
                "scope": "m.room",
                "device_id": self.user.device_id,
                "focus_active": {"type": creds["focus"]["type"]},
                "foci_preferred": [{"type": creds["focus"]["type"]}],
                "membershipID": f"synthetic-{now}",
                "m.call.intent": "video" if self.video else "audio",
                "created_ts": now,
                "expires": 3_600_000,
            }
        )
        self.joined_at = time.monotonic()
        return self

    async def _credentials(self) -> dict[str, Any]:
        status, creds = await Api(self.stack, self.user).call(
            "POST",
            f"/servers/{self.server_id}/channels/{self.channel_id}/sfu",
            {"device_id": self.user.device_id},
        )
        assert status == 200, creds
        return dict(creds)

    async def __aexit__(self, *exc: object) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            await asyncio.gather(self._keepalive, return_exceptions=True)
        if self.pc is not None:
            await self.pc.close()
        if self._session is not None:
            await self._session.__aexit__(None, None, None)
        with contextlib.suppress(AssertionError):
            await self._write_membership({})
