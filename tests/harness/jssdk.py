"""matrix-js-sdk as a test client: 37.5 scenarios run in Node, 43 and 37.5 bundled for Chromium.

`make test` installs tests/js (npm ci, pinned by its package-lock.json). A test runs a 37.5
scenario of tests/js/node/scenarios.mjs against the stack with `run_scenario` (JSON in, JSON out),
or opens `SdkPage` in Playwright: a page served from 127.0.0.1 (Chromium's local-network rules
block requests to the homeserver from other origins) whose `window.sdk` is matrix-js-sdk 43
(`Sdk43Page`) or 37.5 (`SdkPage("37")`, for what needs WebRTC, which Node lacks).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Page

from tests.harness.stack import Stack, User

JS_DIR = Path(__file__).resolve().parents[1] / "js"
NODE_MODULES = JS_DIR / "node_modules"
SCENARIO = JS_DIR / "node" / "scenario.mjs"
# The SDK versions a page can load, each bundled from its own entry.
SDK_VERSIONS = ("43", "37")
SCENARIO_TIMEOUT_S = 60.0

PAGE_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>matrix-js-sdk</title></head>
<body><script src="/sdk.js"></script></body></html>
"""


# Starts the page's matrix-js-sdk as `window.client` and waits for its first sync.
START_CLIENT_JS = """async ({homeserver, user_id, access_token, device_id}) => {
  const client = window.sdk.createClient({baseUrl: homeserver, userId: user_id,
                                            accessToken: access_token, deviceId: device_id});
  window.client = client;
  const ready = new Promise((resolve) => client.on("sync", (state) => {
    if (state === "PREPARED" || state === "SYNCING") resolve();
  }));
  await client.startClient({initialSyncLimit: 1});
  await ready;
}"""


class ScenarioFailed(AssertionError):
    """A Node scenario exited with an error; the message carries its stderr."""


def require_installed() -> None:
    if not (NODE_MODULES / "matrix-js-sdk").is_dir():
        pytest.fail(f"{NODE_MODULES} is missing: run `make test` (npm ci in tests/js)")


@dataclass(frozen=True)
class ScenarioResult:
    result: Any
    # What the SDK logged with console.warn/console.error while the scenario ran.
    warnings: list[str]


def client_input(stack: Stack, user: User) -> dict[str, str]:
    return {
        "homeserver": stack.hs_url,
        "user_id": user.user_id,
        "access_token": user.access_token,
        "device_id": user.device_id,
    }


async def run_scenario(name: str, stack: Stack, user: User, **params: Any) -> ScenarioResult:
    """Run tests/js/node/scenarios.mjs `name` as `user` with matrix-js-sdk 37.5 in Node."""
    require_installed()
    payload = json.dumps({**client_input(stack, user), **params}).encode()
    process = await asyncio.create_subprocess_exec(
        "node",
        str(SCENARIO),
        name,
        cwd=JS_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(payload), SCENARIO_TIMEOUT_S)
    except TimeoutError as exc:
        process.kill()
        await process.wait()
        raise ScenarioFailed(
            f"scenario {name} did not finish in {SCENARIO_TIMEOUT_S:.0f} s"
        ) from exc
    if process.returncode != 0:
        raise ScenarioFailed(
            f"scenario {name} exited with {process.returncode}:\n{err.decode()[-4000:]}"
        )
    answer = json.loads(out.decode().strip().splitlines()[-1])
    return ScenarioResult(answer["result"], list(answer["warnings"]))


def build_bundle(version: str = "43") -> Path:
    """tests/js/page/sdk<version>.mjs bundled by esbuild; rebuilt when it or the lock changed."""
    require_installed()
    entry = JS_DIR / "page" / f"sdk{version}.mjs"
    bundle = NODE_MODULES / ".cache" / f"guilds-sdk{version}.js"
    inputs = [entry, JS_DIR / "package-lock.json"]
    if bundle.exists() and all(bundle.stat().st_mtime >= p.stat().st_mtime for p in inputs):
        return bundle
    bundle.parent.mkdir(exist_ok=True)
    subprocess.run(
        [
            str(NODE_MODULES / ".bin" / "esbuild"),
            str(entry),
            "--bundle",
            "--format=iife",
            "--platform=browser",
            "--log-level=error",
            f"--outfile={bundle}",
        ],
        cwd=JS_DIR,
        check=True,
    )
    return bundle


class SdkPage:
    """An HTTP server on 127.0.0.1 with a blank page that loads matrix-js-sdk `version`."""

    def __init__(self, version: str = "43") -> None:
        self.version = version
        self._bundle = build_bundle(version)
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/sdk.js", self._script)
        self._server = TestServer(app, host="127.0.0.1")

    async def _index(self, _request: web.Request) -> web.Response:
        return web.Response(text=PAGE_HTML, content_type="text/html")

    async def _script(self, _request: web.Request) -> web.FileResponse:
        return web.FileResponse(self._bundle)

    async def __aenter__(self) -> str:
        await self._server.start_server()
        return str(self._server.make_url("/"))

    async def __aexit__(self, *_exc: object) -> None:
        await self._server.close()


class Sdk43Page(SdkPage):
    """The page with matrix-js-sdk 43 (what Element Web and Element Call build on)."""

    def __init__(self) -> None:
        super().__init__("43")


async def start_sdk(page: Page, url: str, stack: Stack, user: User) -> None:
    """Open the `SdkPage` at `url` in `page` and sign `user` in there (`window.client`)."""
    await page.goto(url)
    await page.evaluate(START_CLIENT_JS, client_input(stack, user))
