"""A hung test tells where it hangs: shortly before pytest-timeout fails it, every asyncio
task's await chain and every thread's innermost frames go to the test's captured stderr
(which the failure report shows). pytest-timeout alone only shows the event loop's select.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import traceback
from typing import Iterator

import pytest

DUMP_BEFORE = 30  # seconds before the timeout


def _dump(nodeid: str) -> None:
    out = [f"=== hang dump: {nodeid} ==="]
    for loop in [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()]:
        for task in asyncio.all_tasks(loop):
            out.append(f"task {task.get_name()}: {' -> '.join(_await_chain(task.get_coro()))}")
    for ident, frame in sys._current_frames().items():
        names = {t.ident: t.name for t in threading.enumerate()}
        stack = traceback.extract_stack(frame)[-3:]
        out.append(f"thread {names.get(ident, ident)}: " + " <- ".join(
            f"{s.filename.rsplit('/', 1)[-1]}:{s.lineno} {s.name}" for s in reversed(stack)))
    print("\n".join(out), file=sys.stderr, flush=True)


def _await_chain(coro: object) -> list[str]:
    """Where a coroutine waits, outermost first: follows cr_await as far as it goes."""
    chain = []
    while coro is not None and len(chain) < 12:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            chain.append(repr(coro)[:80])
            break
        chain.append(f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno} {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return chain


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    # The whole protocol, as pytest-timeout counts it: a hang in teardown (pytest-asyncio
    # closing the loop: leftover tasks, the default executor) is dumped too.
    timeout = float(item.config.getini("timeout") or 0)
    timer = None
    if timeout > DUMP_BEFORE:
        timer = threading.Timer(timeout - DUMP_BEFORE, _dump, args=(item.nodeid,))
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
