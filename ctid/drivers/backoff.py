"""The reconnect loop every driver link runs: a session until it fails, then a jittered,
doubling wait (reset once a session got going), forever, until the link is stopped."""

from __future__ import annotations

import asyncio
import random
from typing import Awaitable, Callable


async def reconnect_forever(
    session: Callable[[], Awaitable[None]],
    *,
    stopping: Callable[[], bool],
    errors: tuple[type[BaseException], ...],
    on_down: Callable[[BaseException], None],
    on_retry: Callable[[], None],
    backoff_min: float,
    backoff_max: float,
) -> None:
    """Run `session()` again and again. One that returns had logged in: the backoff starts
    afresh. One that raises one of `errors` is reported to `on_down`; anything else is a bug
    and propagates. Jitter (x0.8-1.2) keeps a site's links from reconnecting in step."""
    delay = backoff_min
    while not stopping():
        try:
            await session()
            delay = backoff_min
        except errors as exc:
            if stopping():
                break
            on_down(exc)
        if stopping():
            break
        on_retry()
        await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
        delay = min(delay * 2, backoff_max)
