"""The store writer process's CPU class: idle (SCHED_IDLE) while the machine has spare
CPU for it, normal when it must catch up.

Why: batch writing can wait, publishing cannot. At nice 0, or even nice 19, the writer's
few-ms bursts held a core long enough to push the publish-latency p99 from ~0.4 ms to
~1.9 ms on 2 cores (bench/test_latency.py); in the idle class any normal thread that
wakes takes the core at once. The price: with no spare CPU an idle-class thread gets
next to none (a test whose daemon stop waited 10 s on it, then lost its events, is how
we learnt), so it is only used where it can be undone (`may_lift`).

Linux sets the policy per thread, so these functions cover every thread of the process
(its ZeroMQ I/O thread too).
"""

from __future__ import annotations

import os
import threading

IDLE_POLICY = getattr(os, "SCHED_IDLE", None)


def threads(pid: int) -> list[int]:
    """The process's thread ids (just `pid` where /proc is not there)."""
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return [pid]


def may_lift() -> bool:
    """Whether this process may move a thread out of the idle class: CAP_SYS_NICE, or an
    RLIMIT_NICE that allows nice 0. Tried on a throwaway thread."""
    if IDLE_POLICY is None:
        return False
    allowed: list[bool] = []

    def probe() -> None:
        try:
            os.sched_setscheduler(0, IDLE_POLICY, os.sched_param(0))  # 0: this thread, on Linux
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            allowed.append(True)
        except OSError:
            allowed.append(False)

    thread = threading.Thread(target=probe, name="ctid-cpuclass-probe")
    thread.start()
    thread.join()
    return allowed == [True]


def to_idle(pid: int) -> None:
    """Every thread of `pid` in the idle class (lowering a process of one's own user is
    always allowed; only used where `may_lift`)."""
    assert IDLE_POLICY is not None
    for tid in threads(pid):
        try:
            os.sched_setscheduler(tid, IDLE_POLICY, os.sched_param(0))
        except ProcessLookupError:  # ended meanwhile
            pass


def to_normal(pid: int) -> bool:
    """Every thread of `pid` back in the normal class; False when this process may not do
    that (leaving the idle class takes CAP_SYS_NICE, or RLIMIT_NICE allowing nice 0)."""
    if IDLE_POLICY is None:
        return False
    try:
        for tid in threads(pid):
            os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
    except OSError:  # EPERM; ESRCH: a thread ended meanwhile, the others are done
        return all(_policy(tid) != IDLE_POLICY for tid in threads(pid))
    return True


def _policy(tid: int) -> int | None:
    try:
        return os.sched_getscheduler(tid)
    except OSError:
        return None
