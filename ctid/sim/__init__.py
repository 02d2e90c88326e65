"""A PBX-neutral call center simulation: seeded traffic on a virtual clock.

`CallCenter` produces `Happening`s (a call arrives, joins a queue, rings an agent,
is answered, held, transferred, abandoned...) and keeps the state a PBX would
report. A wire renderer (`ctid.drivers.asterisk.sim` for AMI) turns them into
that PBX's protocol and feeds control requests back in.
"""

from ctid.sim.model import (
    KINDS,
    STRATEGIES,
    TERMINAL,
    Agent,
    AgentSpec,
    Behaviour,
    Call,
    Happening,
    Membership,
    Queue,
    QueueSpec,
    SimConfig,
    SimError,
)
from ctid.sim.traffic import CallCenter

__all__ = [
    "KINDS", "STRATEGIES", "TERMINAL", "Agent", "AgentSpec", "Behaviour", "Call", "CallCenter", "Happening",
    "Membership", "Queue", "QueueSpec", "SimConfig", "SimError",
]
