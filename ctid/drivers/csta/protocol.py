"""CSTA Phase III XML over TCP, framed as AES DMCC frames it: bytes in, messages out. No I/O.

A frame is an 8-byte header then one XML document:

    version   2 bytes, big-endian, always 0
    length    2 bytes, big-endian, the frame's total length *including* the header
    invoke id 4 ASCII digits; a request and its response share one, events use `EVENT_ID`

The body is ECMA-323 ed3 XML (application-session messages are ECMA-354). It is parsed
with the standard library's C expat (pyexpat) directly, the message dict being built in
expat's callbacks: no ElementTree, no pure-Python parser layer in between. That is for
speed (defusedxml's ElementTree parse was ~27 µs of a message's ~40 µs before dispatch).
The refusals defusedxml made are enforced here the same way, by expat handlers that raise
before anything declared is used: a document type declaration (StartDoctypeDeclHandler)
is refused outright, and so, should one ever get that far, is any entity declaration
(EntityDeclHandler, UnparsedEntityDeclHandler) and any external entity reference
(ExternalEntityRefHandler; parameter entities are never parsed). So entity expansion
bombs ("billion laughs") and external entities cannot happen; an undefined entity
reference is an expat well-formedness error. Nesting deeper than `MAX_DEPTH` is refused
too (the ElementTree path died on Python's recursion limit there). A body that is not
XML, refused, or not in one of `NAMESPACES`, is counted and skipped; the frames around it
are unaffected. A header that cannot be a header means the byte stream is lost: the
parser says so (`broken`) and the link reconnects.

Messages are plain nested dicts keyed by local element names (namespaces dropped after
the root's was checked): a leaf is its text, an element that repeats becomes a list;
attributes, comments and processing instructions are ignored.

`PyFrameParser` and `py_parse` here are the specification; `_fast/cstaxml.pyx` is their
compiled twin (the same expat, its callbacks in C), and `FrameParser` / `parse` below are
whichever is available, compiled first (`COMPILED`). tests/test_csta_fast.py keeps them equal.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping
from xml.parsers.expat import XML_PARAM_ENTITY_PARSING_NEVER, ExpatError, ParserCreate
from xml.sax.saxutils import escape

NS_CSTA = "http://www.ecma-international.org/standards/ecma-323/csta/ed3"
NS_SESSION = "http://www.ecma-international.org/standards/ecma-354/appl_session"
NS_AVAYA = "http://www.avaya.com/csta"  # private data (agent reason codes, caller names)
NAMESPACES = frozenset({NS_CSTA, NS_SESSION})

EVENT_ID = "9999"  # the invoke id every event carries; requests use 0001..9998
HEADER = 8
MAX_FRAME = 0xFFFF  # the length field has 16 bits
_HEAD = struct.Struct(">HH4s")
_CONTEXT = 120  # bytes of a bad frame kept for the log
MAX_DEPTH = 100  # element nesting refused beyond this (CSTA messages nest < 10 deep)


class CstaError(Exception):
    """A negative answer to a request: `code` is the CSTAErrorCode's value (or the
    session NegResponse's errorCode), `category` its element (operation, security...)."""

    def __init__(self, category: str, code: str, request: str = "") -> None:
        super().__init__(f"{request + ': ' if request else ''}{category} error {code}")
        self.category = category
        self.code = code


@dataclass(slots=True)
class Message:
    """One decoded frame: `name` is the root element's local name, `body` its children."""

    invoke_id: str
    name: str
    body: dict[str, Any]
    namespace: str

    @property
    def is_event(self) -> bool:
        return self.invoke_id == EVENT_ID


def as_list(value: Any) -> list[Any]:
    """A value that may repeat, always as a list (absent -> [])."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class Refused(ValueError):
    """XML refused before use; the class name (DTDForbidden, ...) is the reason logged."""


class DTDForbidden(Refused):
    pass


class EntitiesForbidden(Refused):
    pass


class ExternalReferenceForbidden(Refused):
    pass


class TooDeep(Refused):
    pass


def _doctype(name: str, *_: Any) -> None:
    raise DTDForbidden(name)


def _entity(name: str, *_: Any) -> None:
    raise EntitiesForbidden(name)


def _external(context: str, base: str, sysid: str, *_: Any) -> None:
    raise ExternalReferenceForbidden(sysid)


# Speed: expat interns element names in `_INTERN` for every document (so they hash once),
# cleared when it grows past 4096 names; `_LOCAL` maps an expat name (`ns}local`) to its
# local name for the first 4096 names seen. Both stay bounded whatever a peer sends.
_INTERN: dict[str, str] = {}
_LOCAL: dict[str, str] = {}


def _local(name: str) -> str:
    local = name[name.rfind("}") + 1:]
    if len(_LOCAL) < 4096:
        _LOCAL[name] = local
    return local


def py_parse(body: bytes) -> tuple[str, dict[str, Any]]:
    """One XML document -> (root's expat name, `ns}local` or `local`; its children as a
    dict of local name -> value, a leaf's value its text, a repeated name a list). Raises ExpatError (malformed), `Refused`, or
    LookupError / ValueError (an encoding expat cannot use)."""
    if len(_INTERN) > 4096:  # names expat has seen, shared by all documents (bounded)
        _INTERN.clear()
    p = ParserCreate(None, "}", _INTERN)
    p.SetParamEntityParsing(XML_PARAM_ENTITY_PARSING_NEVER)
    p.StartDoctypeDeclHandler = _doctype
    p.EntityDeclHandler = _entity
    p.UnparsedEntityDeclHandler = _entity
    p.ExternalEntityRefHandler = _external
    p.buffer_text = True
    stack: list[dict[str, Any] | None] = []
    push, pop = stack.append, stack.pop
    kids: dict[str, Any] | None = None  # the open element's children (None: none yet, a leaf so far)
    text = ""  # the open element's text (what a leaf's value is)
    root = ""
    top: dict[str, Any] = {}  # the document: the root's value lands in it

    def start(name: str, attrs: Any) -> None:
        nonlocal kids, text
        if kids is None:
            kids = {}
            if len(stack) >= MAX_DEPTH:
                raise TooDeep(name)
        push(kids)
        kids = None
        text = ""

    def end(name: str) -> None:
        nonlocal kids
        value = text if kids is None else kids
        kids = pop()
        try:
            local = _LOCAL[name]
        except KeyError:
            local = _local(name)
        if local in kids:
            prev = kids[local]
            if prev.__class__ is list:
                prev.append(value)
            else:
                kids[local] = [prev, value]
        else:
            kids[local] = value

    def data(chunk: str) -> None:
        nonlocal text
        text += chunk

    def first(name: str, attrs: Any) -> None:  # the root: its name kept, then every element as above
        nonlocal root
        root = name
        p.StartElementHandler = start
        push(top)

    p.StartElementHandler = first
    p.EndElementHandler = end
    p.CharacterDataHandler = data
    p.Parse(body, True)
    for value in top.values():
        if value.__class__ is dict:
            return root, value
    return root, {}  # a root without child elements


class PyFrameParser:
    """Incremental DMCC frame parser (the specification; see `FrameParser` below).

    `feed(data)` returns the complete, well-formed messages in arrival order; a partial
    frame waits for the next call. Bad input never raises: a bad body is counted in
    `errors` and described by `take_errors()` as (reason, first bytes); a bad header sets
    `broken` (the reason) and the parser stops, since nothing after it can be trusted.
    """

    def __init__(self, namespaces: Iterable[str] = NAMESPACES) -> None:
        self._ns = frozenset(namespaces)
        self._buf = b""
        self._errors: list[tuple[str, bytes]] = []
        self.frames = 0
        self.errors = 0
        self.broken: str | None = None

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame waiting in the buffer (non-zero at EOF = a truncated frame)."""
        return len(self._buf)

    def take_errors(self) -> list[tuple[str, bytes]]:
        errors, self._errors = self._errors, []
        return errors

    def _error(self, reason: str, raw: bytes) -> None:
        self.errors += 1
        self._errors.append((reason, raw[:_CONTEXT]))

    def feed(self, data: bytes) -> list[Message]:
        if self.broken is not None:
            return []
        buf = self._buf + data if self._buf else data
        out: list[Message] = []
        start, size = 0, len(buf)
        while size - start >= HEADER:
            version, length, invoke = _HEAD.unpack_from(buf, start)
            if version != 0 or length <= HEADER or not invoke.isdigit():
                self.broken = f"bad frame header (version {version}, length {length}, invoke id {invoke!r})"
                self._error(self.broken, buf[start:start + _CONTEXT])
                self._buf = b""
                return out
            end = start + length
            if end > size:
                break
            self.frames += 1
            message = self.decode(invoke.decode(), buf[start + HEADER:end])
            if message is not None:
                out.append(message)
            start = end
        self._buf = buf[start:]
        return out

    def decode(self, invoke_id: str, body: bytes) -> Message | None:
        """One frame's XML; None (counted, described) when it is not a CSTA message."""
        try:
            tag, fields = py_parse(body)
        except Refused as exc:  # a DTD, entities, too deep: refused before any use
            self._error(f"refused XML ({type(exc).__name__})", body)
            return None
        except (ExpatError, ValueError, LookupError) as exc:  # truncated, junk after it, unknown encoding
            self._error(f"malformed XML ({exc})", body)
            return None
        ns, sep, name = tag.partition("}")
        if not sep:
            ns, name = "", tag
        if ns not in self._ns:
            self._error(f"wrong namespace {ns or '(none)'!r} for <{name}>", body)
            return None
        return Message(invoke_id, name, fields, ns)


try:  # the compiled twin, when the extension was built (it drives this same expat from C)
    from ctid._fast.cstaxml import FrameParser, parse  # type: ignore[import-not-found]

    COMPILED = True
except ImportError:  # pragma: no cover - depends on the build
    FrameParser = PyFrameParser  # type: ignore[misc,assignment]
    parse = py_parse
    COMPILED = False


# -- encoding ---------------------------------------------------------------------------------


def _xml(parts: list[str], fields: Mapping[str, Any]) -> None:
    for key, value in fields.items():
        if value is None:
            continue
        if key.startswith("{"):  # an element in another namespace (private data)
            ns, _, tag = key[1:].partition("}")
            open_ = f'{tag} xmlns="{ns}"'
        else:
            tag = open_ = key
        for item in value if isinstance(value, list) else (value,):
            if isinstance(item, Mapping):
                if item:
                    parts.append(f"<{open_}>")
                    _xml(parts, item)
                    parts.append(f"</{tag}>")
                else:
                    parts.append(f"<{open_}/>")
            elif item is True:  # a flag element: <notKnown/>
                parts.append(f"<{open_}/>")
            else:
                parts.append(f"<{open_}>{escape(str(item))}</{tag}>")


def encode(name: str, fields: Mapping[str, Any], invoke_id: str = EVENT_ID, namespace: str = NS_CSTA) -> bytes:
    """One frame: header + `<name xmlns=namespace>` with `fields` as child elements.

    Values: text (escaped), a dict (nested elements), a list (the element repeated),
    True (an empty element), None (left out). Keys `{ns}tag` set another namespace.
    """
    if len(invoke_id) != 4 or not invoke_id.isdigit():
        raise ValueError(f"invoke id must be 4 digits, not {invoke_id!r}")
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', f'<{name} xmlns="{namespace}">']
    _xml(parts, fields)
    parts.append(f"</{name}>")
    body = "".join(parts).encode()
    if len(body) + HEADER > MAX_FRAME:
        raise ValueError(f"{name}: {len(body)} bytes do not fit in one frame")
    return _HEAD.pack(0, len(body) + HEADER, invoke_id.encode()) + body


def device(value: str | None) -> dict[str, Any]:
    """A SubjectDeviceID: the identifier, or `<notKnown/>`."""
    return {"deviceIdentifier": value} if value else {"notKnown": True}


def connection(call_id: str, device_id: str) -> dict[str, str]:
    return {"callID": call_id, "deviceID": device_id}


def device_id(value: Any) -> str | None:
    """The identifier of a SubjectDeviceID element (None for notKnown/restricted)."""
    if isinstance(value, dict):
        ident = value.get("deviceIdentifier")
        return ident if isinstance(ident, str) and ident else None
    return value or None


def private_data(body: dict[str, Any]) -> dict[str, Any]:
    """A message's private data (extensions/privateData/private), by local name."""
    ext = body.get("extensions")
    data = ext.get("privateData") if isinstance(ext, dict) else None
    private = data.get("private") if isinstance(data, dict) else None
    return private if isinstance(private, dict) else {}


def timestamp(t: float) -> str:
    """An event time stamp (extensions/security/timestamp), UTC with milliseconds."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_timestamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
