"""Running the app: on SIGTERM/SIGINT stop accepting, let in-flight requests finish (up to
``server.shutdown_timeout``), then close resources and exit; on SIGHUP reload the scrubbing rules.

aiohttp's own ``run_app`` stops reading from open connections as soon as it shuts down, which cuts
off a request whose body is still arriving; so we stop the listener first and wait ourselves.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web
from aiohttp.typedefs import Handler

from .reload import reload_rules

log = logging.getLogger("replayd")


class InFlight:
    """Counts requests being handled, so shutdown can wait for them."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.count += 1
        self._idle.clear()
        try:
            return await handler(request)
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False


async def serve(app: web.Application, host: str, port: int, shutdown_timeout: float) -> None:
    in_flight = InFlight()
    app.middlewares.insert(0, in_flight.middleware)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        reloads: set[asyncio.Task] = set()

        def on_hangup() -> None:
            task = asyncio.create_task(reload_rules(app))
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hangup)
        await stop.wait()
        log.info("stopping: no new connections; waiting for %d in-flight request(s)", in_flight.count)
        await site.stop()
        if not await in_flight.wait_idle(shutdown_timeout):
            log.warning("%d request(s) still running after %.0f s; cancelling them", in_flight.count,
                        shutdown_timeout)
    finally:
        await runner.cleanup()


def run(app: web.Application, host: str, port: int, shutdown_timeout: float) -> None:
    asyncio.run(serve(app, host, port, shutdown_timeout))
