"""Call, agent and supervisor control requests on the bus (`docs/protocol.md`, "Control").

`ops` is the vocabulary and its checks, `recent` the idempotency window, `service` the
path from a request to a driver's `CallControl` method and back.
"""

from ctid.control.ops import BY_NAME, OPS, Op
from ctid.control.service import ControlService

__all__ = ["BY_NAME", "OPS", "ControlService", "Op"]
