"""The plugin's running parts in the daemon: the `queue.stats` publisher and the wallboard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ctid.store.engine import make_engine
from ctid_plugins.reporting.config import Options, split_host_port
from ctid_plugins.reporting.realtime import Publisher
from ctid_plugins.reporting.wallboard import Wallboard

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ctid.plugins import PluginContext


@dataclass
class Live:
    engine: Engine
    publisher: Publisher | None
    wallboard: Wallboard | None

    @classmethod
    async def start(cls, ctx: PluginContext) -> Live:
        # the site's [[queue]] service levels, as `ctid report -c` takes them: the wallboard's SL
        # agrees with the reports, and both keep the same rollup (rollup.fingerprint)
        options = Options.parse(ctx.options, ctx.service_levels)
        engine = make_engine(ctx.database_url)
        board = None
        if options.wallboard:
            board = Wallboard(*split_host_port(options.wallboard))
            await board.start()
            ctx.log.info("wallboard serving", extra={"ctx": {"url": board.url}})
        publisher = None
        if options.stats_interval > 0:
            publisher = Publisher(ctx, engine, options, (), [board.push] if board else [])
            publisher.start()
        return cls(engine, publisher, board)

    async def close(self) -> None:
        if self.publisher is not None:
            await self.publisher.stop()
        if self.wallboard is not None:
            await self.wallboard.stop()
        self.engine.dispose()
