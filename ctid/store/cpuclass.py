"""The writer process's CPU class: idle (SCHED_IDLE) while the machine has spare CPU for
it, normal when it must catch up. Linux sets the policy per thread, so both functions
cover every thread of the process (its ZeroMQ I/O thread too); elsewhere the idle class
is approximated by nice 19 and a process cannot be lifted back.
"""

from __future__ import annotations

import os

IDLE_POLICY = getattr(os, "SCHED_IDLE", None)


def threads(pid: int) -> list[int]:
    """The process's thread ids (just `pid` where /proc is not there)."""
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return [pid]


def to_idle(pid: int) -> None:
    """Every thread of `pid` in the idle class (lowering a process of one's own user is
    always allowed)."""
    if IDLE_POLICY is not None:
        try:
            for tid in threads(pid):
                os.sched_setscheduler(tid, IDLE_POLICY, os.sched_param(0))
            return
        except OSError:
            pass
    try:
        os.setpriority(os.PRIO_PROCESS, pid, 19)  # elsewhere: the least a process can ask for
    except OSError:
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
