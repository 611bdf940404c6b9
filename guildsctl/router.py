"""The router in front of Synapse's processes: client paths to the client worker, the rest to main.

Synapse does not route requests between its own processes; in production a reverse proxy does
(docs/DEPLOYMENT.md). This one is for `guilds run --profile workers` and the tests only: it
streams bodies both ways (long-polling `/sync` included), forwards the raw path so encoded room
ids and aliases reach Synapse untouched, and answers 502 when a process is down.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web

from guildsctl.configgen import read_yaml
from guildsctl.workers import routes_to_client_worker

logger = logging.getLogger("guilds.router")

# Headers about one hop, not the request: never forwarded (RFC 9110 §7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def build_app(main_url: str, client_worker_url: str) -> web.Application:
    app = web.Application(client_max_size=100 * 1024 * 1024)

    async def on_startup(app: web.Application) -> None:
        # No total timeout: /sync holds a request open for as long as the client asked.
        app["session"] = ClientSession(
            timeout=ClientTimeout(total=None, sock_connect=10),
            connector=TCPConnector(limit=0),
            auto_decompress=False,
        )

    async def on_cleanup(app: web.Application) -> None:
        await app["session"].close()

    async def proxy(request: web.Request) -> web.StreamResponse:
        upstream = client_worker_url if routes_to_client_worker(request.path) else main_url
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read()
        session: ClientSession = request.app["session"]
        try:
            async with session.request(
                request.method,
                upstream + request.raw_path,
                headers=headers,
                data=body or None,
                allow_redirects=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            ) as answer:
                response = web.StreamResponse(status=answer.status, reason=answer.reason)
                for key, value in answer.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        response.headers.add(key, value)
                await response.prepare(request)
                async for chunk in answer.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (ClientError, OSError) as exc:
            # The path alone: query strings may hold secrets (old clients' access_token).
            logger.warning("%s %s: %s unreachable: %s", request.method, request.path, upstream, exc)
            return web.json_response(
                {"errcode": "M_UNKNOWN", "error": "This part of the homeserver is unavailable."},
                status=502,
            )

    app.router.add_route("*", "/{tail:.*}", proxy)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m guildsctl.router")
    parser.add_argument("-c", "--config", required=True, help="router.yaml")
    args = parser.parse_args(argv)
    config = read_yaml(Path(args.config))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    listen = config["listen"]
    web.run_app(
        build_app(str(config["main"]), str(config["client_worker"])),
        host=str(listen["host"]),
        port=int(listen["port"]),
        print=None,
        access_log=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
