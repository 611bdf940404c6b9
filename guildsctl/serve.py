"""`guilds serve`: the bridge (appservice + provisioning API) and the web UI in one process."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from guilds.config import GuildsConfig

logger = logging.getLogger(__name__)


async def serve(config: GuildsConfig) -> None:
    # Imported here so `guilds check-config` and `generate-config` start without aiohttp's weight.
    from bridge.metrics import create_metrics_app, metrics_url
    from bridge.runtime import Bridge
    from web.app import create_app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    bridge = Bridge(config)
    await bridge.open()
    runners: list[web.AppRunner] = []
    try:
        # The appservice listener must answer before the bridge pings the homeserver,
        # because Synapse calls it back during the ping.
        appservice = web.AppRunner(bridge.appservice_app, access_log=None)
        await appservice.setup()
        runners.append(appservice)
        await web.TCPSite(
            appservice, config.appservice.listen.host, config.appservice.listen.port
        ).start()
        if config.web.enabled:
            ui = web.AppRunner(create_app(config, bridge.provisioning_app), access_log=None)
            await ui.setup()
            runners.append(ui)
            await web.TCPSite(ui, config.web.listen.host, config.web.listen.port).start()
        if config.metrics.enabled:
            scrape = web.AppRunner(create_metrics_app(bridge.metrics), access_log=None)
            await scrape.setup()
            runners.append(scrape)
            await web.TCPSite(
                scrape, config.metrics.listen.host, config.metrics.listen.port
            ).start()
            logger.info("Metrics at %s", metrics_url(config.metrics.listen))
        # Waiting for the homeserver can take a while; a signal meanwhile must still stop us.
        connecting = asyncio.ensure_future(bridge.connect())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not connecting.done():
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
            return
        stopping.cancel()
        connecting.result()
        logger.info(
            "Guilds is serving: appservice on %s:%d, web UI on %s",
            config.appservice.listen.host,
            config.appservice.listen.port,
            config.web.public_url if config.web.enabled else "(disabled)",
        )
        await stop.wait()
        logger.info("Stopping")
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        await bridge.close()
