"""AMI wire protocol: bytes in, frames (dicts of str) out. No I/O, no asyncio.

This pure-Python parser is the specification; `_fast/amiframes.pyx` is its
compiled twin with the same API and a property test keeps the two equal.
`FrameParser` below is whichever is available (compiled first).

The AMI stream is the banner line (`Asterisk Call Manager/x.y.z\\r\\n`), then
frames: `Key: Value` lines ending in CRLF, a frame ending in an empty line.
Two thirds of a real stream is noise for CTI (VarSet, Newexten, ...): those
frames are recognised from their first line and dropped before any decoding.
"""

from __future__ import annotations

from typing import Iterable

#: Events dropped before parsing: nothing in the normalized model comes from them.
NOISE_EVENTS = frozenset(
    {
        "VarSet",  # but see KEEP_VARIABLES
        "Newexten",
        "DeviceStateChange",
        "Cdr",
        "NewCallerid",
        "NewConnectedLine",
        "NewAccountCode",
        "DialState",
        "MusicOnHoldStart",
        "MusicOnHoldStop",
        "SoftHangupRequest",
        "LocalBridge",
        "LocalOptimizationBegin",
        "LocalOptimizationEnd",
        "BridgeCreate",
        "BridgeDestroy",
        "BridgeInfoChannel",
        "RTCPSent",
        "RTCPReceived",
        "DTMFBegin",
        "DTMFEnd",
        "ChallengeSent",
        "SuccessfulAuth",
        "ContactStatus",
        "PeerStatus",
        "Registry",
        "NewPeerAccount",
        "Reload",
        "ExtensionStatus",
        "PresenceStateChange",
    }
)

#: What the driver's link drops: the noise but Newexten, whose place (Context, Exten) tells a queue
#: timeout from a third-party Redirect out of the queue (see mapper.py). Parsing them is ~13% more
#: frames on a real stream; the mapper looks at them only while a queue exit is undecided.
DRIVER_DROP = NOISE_EVENTS - {"Newexten"}

#: VarSet frames for these variables are kept (MixMonitor's file name arrives only as a VarSet).
KEEP_VARIABLES = frozenset({"MIXMONITOR_FILENAME"})

#: A frame larger than this is discarded whole (and counted), up to its terminating empty line.
MAX_FRAME = 1 << 20

BANNER_PREFIX = b"Asterisk Call Manager/"
_END = b"\r\n\r\n"
_CONTEXT = 120  # bytes of a bad frame kept for the log


class PyFrameParser:
    """Incremental AMI frame parser.

    `feed(data)` returns the complete, wanted frames in arrival order; partial
    frames wait in the buffer for the next call. Bad input never raises: it is
    counted (`errors`) and described in `take_errors()` as (reason, first bytes).
    """

    def __init__(
        self,
        drop: Iterable[str] = NOISE_EVENTS,
        keep_variables: Iterable[str] = KEEP_VARIABLES,
        max_frame: int = MAX_FRAME,
    ) -> None:
        self._drop = frozenset(name.encode() for name in drop)
        self._keep = tuple(b"\r\nVariable: " + name.encode() + b"\r\n" for name in keep_variables)
        self._max = max_frame
        self._buf = b""
        self._skipping = False  # inside an oversized frame, discarding up to its end
        self._errors: list[tuple[str, bytes]] = []
        self.banner: str | None = None
        self.frames = 0  # frames seen, wanted or not
        self.dropped = 0  # noise frames dropped unparsed
        self.errors = 0

    def _error(self, reason: str, raw: bytes) -> None:
        self.errors += 1
        self._errors.append((reason, raw[:_CONTEXT]))

    def take_errors(self) -> list[tuple[str, bytes]]:
        """The errors since the last call, oldest first (reason, first bytes of the input)."""
        errors, self._errors = self._errors, []
        return errors

    def feed(self, data: bytes) -> list[dict[str, str]]:
        buf = self._buf + data if self._buf else data
        out: list[dict[str, str]] = []
        start = 0
        if self._skipping:
            end = buf.find(_END)
            if end < 0:
                # keep 3 bytes: the terminator may straddle two reads
                self._buf = buf[-3:]
                return out
            self._skipping = False
            start = end + 4
        if self.banner is None and buf.startswith(BANNER_PREFIX, start):
            nl = buf.find(b"\r\n", start)
            if nl < 0:
                self._buf = buf[start:]
                return out
            self.banner = buf[start:nl].decode("utf-8", "replace")
            start = nl + 2
        drop = self._drop
        while True:
            end = buf.find(_END, start)
            if end < 0:
                break
            frame = buf[start:end]
            start = end + 4
            self.frames += 1
            if len(frame) > self._max:
                self._error("oversized frame", frame)
                continue
            if frame.startswith(b"Event: "):
                nl = frame.find(b"\r\n", 7)
                name = frame[7:nl] if nl >= 0 else frame[7:]
                if name in drop and not (self._keep and name == b"VarSet" and self._kept(frame)):
                    self.dropped += 1
                    continue
            parsed = self._parse(frame)
            if parsed is not None:
                out.append(parsed)
        rest = buf[start:]
        if len(rest) > self._max:
            self.frames += 1
            self._error("oversized frame", rest)
            self._skipping = True
            rest = rest[-3:]
        self._buf = rest
        return out

    def _kept(self, frame: bytes) -> bool:
        return any(marker in frame for marker in self._keep)

    def _parse(self, frame: bytes) -> dict[str, str] | None:
        text = frame.decode("utf-8", "replace")
        lines = text.split("\r\n")
        try:
            fields = dict(line.split(": ", 1) for line in lines)
        except ValueError:
            fields = self._parse_slow(lines, frame)
        if "Event" not in fields and "Response" not in fields:
            self._error("frame without Event or Response", frame)
            return None
        return fields

    def _parse_slow(self, lines: list[str], frame: bytes) -> dict[str, str]:
        fields: dict[str, str] = {}
        for line in lines:
            key, sep, value = line.partition(":")
            if not sep or not key:
                if line:
                    self._error("line without 'Key: '", line.encode("utf-8", "replace"))
                continue
            fields[key] = value[1:] if value.startswith(" ") else value
        return fields


try:  # the compiled twin, when the extension was built
    from ctid._fast.amiframes import FrameParser  # type: ignore[import-not-found]

    COMPILED = True
except ImportError:  # pragma: no cover - depends on the build
    FrameParser = PyFrameParser  # type: ignore[misc,assignment]
    COMPILED = False


def encode_action(action: str, fields: dict[str, object] | None = None, action_id: str | None = None) -> bytes:
    """One AMI action frame. Values are stringified; CR/LF inside a value is refused."""
    lines = [f"Action: {action}"]
    if action_id is not None:
        lines.append(f"ActionID: {action_id}")
    for key, value in (fields or {}).items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            values = value
        else:
            values = (value,)
        for item in values:
            text = str(item)
            if "\r" in text or "\n" in text:
                raise ValueError(f"AMI field {key!r} contains a line break")
            lines.append(f"{key}: {text}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
