"""Daemon.stop() ends even when a driver task does not end when cancelled (a driver that
loses its cancellation, as Python 3.11's wait_for can make it, or ignores it): it waits a
bounded time, counts and logs the task it leaves behind. Before, it waited forever."""

from __future__ import annotations

import asyncio

from helpers import free_port, site_config
from ctid.daemon import Daemon


class Deaf:
    """A driver that ignores cancellation until released (a third-party driver's bug)."""

    name = "deaf"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.cancels = 0

    async def run(self) -> None:
        while True:
            try:
                await self.release.wait()
                return
            except asyncio.CancelledError:
                self.cancels += 1

    async def stop(self) -> None:
        pass


async def test_daemon_stops_even_when_a_driver_task_ignores_its_cancellation(tmp_path, caplog):
    daemon = Daemon(site_config(tmp_path, free_port()))
    deaf = Deaf()
    daemon.drivers[:] = [deaf]
    daemon.task_stop_timeout = 0.2  # the wait for a task that never ends: nothing here depends on speed
    await daemon.start()
    task = daemon._tasks[0]
    try:
        await daemon.stop()  # before: waited for the deaf driver forever
        assert deaf.cancels == 1 and not task.done()
        assert daemon.counters.get("daemon.stuck_tasks") == 1
        assert any(r.msg.startswith("task did not end") and r.ctx == {"task": "driver deaf"} for r in caplog.records)
    finally:
        deaf.release.set()
        await task
