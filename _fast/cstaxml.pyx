# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of `ctid.drivers.csta.protocol.PyFrameParser` and `parse`.

Same constructor, attributes, `feed()`, `decode()` and `take_errors()`; the pure-Python
parser is the specification and `tests/test_csta_fast.py` keeps the two equal (same
messages, counters, error reasons and raised exceptions for any byte stream).

The XML parser is still expat, the very one the interpreter uses: pyexpat exports its
expat functions in the `pyexpat.expat_CAPI` capsule (CPython's own `_elementtree` drives
expat through it). Only the callbacks move into C: they build the message dicts directly,
instead of expat calling Python functions ~55 times per message through pyexpat.

The refusals of the pure parser, and how they hold here:
- a document type declaration: refused by the StartDoctypeDecl handler (DTDForbidden).
  The capsule has no entity-declaration or external-entity-reference setters, and none is
  needed: entities can only be declared inside a DTD, whose very start is refused first
  (the pure parser's EntityDecl/ExternalEntityRef handlers are unreachable for the same
  reason). Parameter entities are never parsed (expat's default, the same as the pure
  parser's explicit XML_PARAM_ENTITY_PARSING_NEVER).
- after a refusal every handler is cleared, exactly what pyexpat does when a Python
  handler raises: expat finishes the document without building anything (the capsule has
  no XML_StopParser either) and the refusal is what `parse` raises.
- nesting deeper than MAX_DEPTH: refused in the start handler (TooDeep).
- an encoding expat does not know: pyexpat's own unknown-encoding handler (also in the
  capsule) answers it, so the same 8-bit codecs work and the same LookupError/ValueError
  comes out.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.exc cimport PyErr_Occurred
from cpython.list cimport PyList_Append
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.object cimport PyObject

cdef extern from "Python.h":
    void PyObject_GC_UnTrack(object op)
from cpython.pycapsule cimport PyCapsule_Import
from cpython.ref cimport Py_DECREF, Py_INCREF
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.limits cimport INT_MAX
from libc.string cimport memcmp, memcpy, strcmp, strlen

import os

from pyexpat import ExpatError

cdef extern from "expat.h":
    ctypedef char XML_Char
    ctypedef char XML_LChar
    ctypedef unsigned long XML_Size
    ctypedef struct XML_ParserStruct:
        pass
    ctypedef XML_ParserStruct* XML_Parser
    ctypedef struct XML_Memory_Handling_Suite:
        pass
    ctypedef struct XML_Encoding:
        pass
    cdef enum XML_Status:
        XML_STATUS_ERROR
        XML_STATUS_OK
    cdef enum XML_Error:
        XML_ERROR_NONE
    ctypedef void (*XML_StartElementHandler)(void*, const XML_Char*, const XML_Char**)
    ctypedef void (*XML_EndElementHandler)(void*, const XML_Char*)
    ctypedef void (*XML_CharacterDataHandler)(void*, const XML_Char*, int)
    ctypedef void (*XML_StartDoctypeDeclHandler)(void*, const XML_Char*, const XML_Char*, const XML_Char*, int)
    ctypedef int (*XML_UnknownEncodingHandler)(void*, const XML_Char*, XML_Encoding*)
    int XML_MAJOR_VERSION

cdef extern from "pyexpat.h":
    const char* PyExpat_CAPI_MAGIC
    const char* PyExpat_CAPSULE_NAME
    struct PyExpat_CAPI:
        char* magic
        int size
        int MAJOR_VERSION
        const XML_LChar* (*ErrorString)(XML_Error code)
        XML_Error (*GetErrorCode)(XML_Parser parser)
        XML_Size (*GetErrorColumnNumber)(XML_Parser parser)
        XML_Size (*GetErrorLineNumber)(XML_Parser parser)
        XML_Status (*Parse)(XML_Parser parser, const char* s, int len, int isFinal)
        XML_Parser (*ParserCreate_MM)(const XML_Char* encoding, const XML_Memory_Handling_Suite* memsuite,
                                      const XML_Char* namespaceSeparator)
        void (*ParserFree)(XML_Parser parser)
        void (*SetCharacterDataHandler)(XML_Parser parser, XML_CharacterDataHandler handler)
        void (*SetElementHandler)(XML_Parser parser, XML_StartElementHandler start, XML_EndElementHandler end)
        void (*SetUnknownEncodingHandler)(XML_Parser parser, XML_UnknownEncodingHandler handler, void* data)
        void (*SetUserData)(XML_Parser parser, void* userData)
        void (*SetStartDoctypeDeclHandler)(XML_Parser parser, XML_StartDoctypeDeclHandler start)
        int (*DefaultUnknownEncodingHandler)(void* data, const XML_Char* name, XML_Encoding* info)
        int (*SetHashSalt)(XML_Parser parser, unsigned long hash_salt)


cdef PyExpat_CAPI* capi = <PyExpat_CAPI*>PyCapsule_Import(PyExpat_CAPSULE_NAME, 0)
# The header this was compiled with must describe the interpreter's expat: same magic (the
# struct's layout), a struct at least as large, the same major version. Otherwise the import
# fails and protocol.py falls back to the pure parser.
if strcmp(capi.magic, PyExpat_CAPI_MAGIC) != 0 or capi.size < <int>sizeof(PyExpat_CAPI) \
        or capi.MAJOR_VERSION != XML_MAJOR_VERSION:
    raise ImportError(f"pyexpat's C API ({capi.magic.decode()}, expat {capi.MAJOR_VERSION}) does not match "
                      f"the headers ctid._fast.cstaxml was built with")

# pyexpat salts every parser's hash tables itself; without a salt expat would read the
# system's random source for each document (one syscall per message).
cdef unsigned long SALT = int.from_bytes(os.urandom(sizeof(unsigned long)), "little") | 1

cdef enum:
    HEADER = 8
    CONTEXT = 120          # bytes of a bad frame kept for the log
    TEXT0 = 256            # a leaf's text fits in the document's own buffer up to this
    NAME_SLOTS = 1024      # element-name cache slots (power of two)

# The pure module's values, repeated: importing protocol here at import time would be
# circular (protocol imports this module). tests/test_csta_fast.py checks they are equal.
MAX_DEPTH = 100
cdef int C_MAX_DEPTH = MAX_DEPTH
cdef str EVENT_ID = "9999"

# Classes that live in protocol.py (the message, the refusals), fetched on first use.
cdef object Message = None
cdef object DTDForbidden = None
cdef object TooDeep = None
cdef object Refused = None
cdef frozenset NAMESPACES = None


cdef int _load() except -1:
    global Message, DTDForbidden, TooDeep, Refused, NAMESPACES
    if Message is None:
        from ctid.drivers.csta import protocol
        DTDForbidden, TooDeep, Refused = protocol.DTDForbidden, protocol.TooDeep, protocol.Refused
        NAMESPACES = protocol.NAMESPACES
        Message = protocol.Message
    return 0


# -- element names -> local names ----------------------------------------------------------------
# expat names are `namespace}local`; a bounded cache keyed by the name's bytes maps each to
# its local name (one str object per name, not one per element).

cdef PyObject* name_keys[NAME_SLOTS]     # bytes of the expat name (owned)
cdef PyObject* name_locals[NAME_SLOTS]   # its local name, str (owned)


cdef inline unsigned long long _load8(const char* p, Py_ssize_t n) noexcept:
    """Up to 8 bytes from p as an integer (memcpy: no alignment assumed)."""
    cdef unsigned long long v = 0
    memcpy(&v, p, 8 if n >= 8 else n)
    return v


cdef object _local_name(const char* name):
    # Hashed on the length and the first and last 8 bytes only: names are `namespace}local`
    # with a long shared namespace, and a slot hit is confirmed by comparing every byte.
    cdef Py_ssize_t n = strlen(name), cut
    cdef unsigned long long h = _load8(name, n) * 0x9E3779B97F4A7C15ULL
    if n > 8:
        h ^= _load8(name + n - 8, 8) * 0xC2B2AE3D27D4EB4FULL
    h ^= <unsigned long long>n
    h ^= h >> 29
    cdef unsigned int slot = <unsigned int>(h ^ (h >> 32)) & (NAME_SLOTS - 1)
    cdef PyObject* key = name_keys[slot]
    if key != NULL and PyBytes_GET_SIZE(<object>key) == n and memcmp(PyBytes_AS_STRING(<object>key), name, n) == 0:
        return <object>name_locals[slot]
    cut = n
    while cut > 0 and name[cut - 1] != b'}':
        cut -= 1
    local = PyUnicode_DecodeUTF8(name + cut, n - cut, NULL)
    new_key = PyBytes_FromStringAndSize(name, n)
    # The slot is read again only now: the allocations above may have run a collection whose
    # finalizers parsed a document and filled this slot meanwhile (no allocation from here on).
    cdef PyObject* old_key = name_keys[slot]
    cdef PyObject* old_local = name_locals[slot]
    Py_INCREF(new_key)
    Py_INCREF(local)
    name_keys[slot] = <PyObject*>new_key
    name_locals[slot] = <PyObject*>local
    if old_key != NULL:
        Py_DECREF(<object>old_key)
        Py_DECREF(<object>old_local)
    return local


# -- one document ----------------------------------------------------------------------------


cdef class _Doc:
    """The state of one document's callbacks (expat's user data)."""

    cdef XML_Parser parser
    cdef list stack         # the open elements' parents' children dicts
    cdef object kids        # the open element's children: a dict, or None while it is a leaf
    cdef dict top           # the document: the root's value lands in it
    cdef object root        # the root's expat name, str
    cdef object error       # the first exception a callback raised
    cdef int depth          # elements open
    cdef char* text         # the open element's text, UTF-8 (what a leaf's value is)
    cdef Py_ssize_t tlen, tcap
    cdef char small[TEXT0]

    def __cinit__(self):
        self.stack = []
        self.top = {}
        self.text = self.small
        self.tcap = TEXT0

    def __dealloc__(self):
        if self.text != self.small:
            PyMem_Free(self.text)

    cdef void fail(self, object exc) noexcept:
        """Keep the first error and stop building: expat finishes the document unheard."""
        if self.error is None:
            self.error = exc
        capi.SetElementHandler(self.parser, NULL, NULL)
        capi.SetCharacterDataHandler(self.parser, NULL)
        capi.SetStartDoctypeDeclHandler(self.parser, NULL)

    cdef int add_text(self, const char* s, int n) except -1:
        cdef char* grown
        cdef Py_ssize_t cap
        if self.tlen + n > self.tcap:
            cap = max(self.tcap * 2, self.tlen + n)
            if self.text == self.small:
                grown = <char*>PyMem_Realloc(NULL, cap)
                if grown != NULL:
                    memcpy(grown, self.small, self.tlen)
            else:
                grown = <char*>PyMem_Realloc(self.text, cap)
            if grown == NULL:
                raise MemoryError()
            self.text, self.tcap = grown, cap
        memcpy(self.text + self.tlen, s, n)
        self.tlen += n
        return 0

    cdef int start(self, const char* name) except -1:
        if self.depth == 0:  # the root: its name kept; its value will land in `top`
            self.root = PyUnicode_DecodeUTF8(name, strlen(name), NULL)
            PyList_Append(self.stack, self.top)
            self.depth = 1
            return 0
        if self.kids is None:
            self.kids = {}
            if self.depth >= C_MAX_DEPTH:
                raise TooDeep(PyUnicode_DecodeUTF8(name, strlen(name), "replace"))
        PyList_Append(self.stack, self.kids)
        self.kids = None
        self.tlen = 0
        self.depth += 1
        return 0

    cdef int end(self, const char* name) except -1:
        if self.kids is None:
            value = PyUnicode_DecodeUTF8(self.text, self.tlen, NULL)
        else:
            value = self.kids
            # Complete, and it holds only str and (untracked) containers of str: nothing in a
            # message can form a reference cycle, so the cycle collector need not walk it
            # (CPython untracks dicts of atomic values itself; a dict gets tracked again as
            # soon as a container is put into it).
            PyObject_GC_UnTrack(value)
        kids = self.stack.pop()
        self.kids = kids
        self.depth -= 1
        local = _local_name(name)
        cdef PyObject* prev = PyDict_GetItem(kids, local)
        if prev == NULL:
            PyDict_SetItem(kids, local, value)
        elif type(<object>prev) is list:
            PyList_Append(<object>prev, value)
        else:
            pair = [<object>prev, value]
            PyObject_GC_UnTrack(pair)  # a list is never untracked by CPython; see above
            PyDict_SetItem(kids, local, pair)
        return 0


cdef void _on_start(void* ud, const XML_Char* name, const XML_Char** atts) noexcept:
    cdef _Doc doc = <_Doc>ud
    try:
        doc.start(name)
    except BaseException as exc:
        doc.fail(exc)


cdef void _on_end(void* ud, const XML_Char* name) noexcept:
    cdef _Doc doc = <_Doc>ud
    try:
        doc.end(name)
    except BaseException as exc:
        doc.fail(exc)


cdef void _on_text(void* ud, const XML_Char* s, int n) noexcept:
    cdef _Doc doc = <_Doc>ud
    try:
        doc.add_text(s, n)
    except BaseException as exc:
        doc.fail(exc)


cdef void _on_doctype(void* ud, const XML_Char* name, const XML_Char* sysid, const XML_Char* pubid,
                      int internal) noexcept:
    cdef _Doc doc = <_Doc>ud
    try:
        exc = DTDForbidden(PyUnicode_DecodeUTF8(name, strlen(name), "replace"))
    except BaseException as other:
        exc = other
    doc.fail(exc)


cdef int _raise_pending() except -1:
    """Propagate an exception pyexpat's unknown-encoding handler left set (LookupError...)."""
    if PyErr_Occurred() != NULL:
        return -1
    return 0


cdef tuple _parse(const char* data, Py_ssize_t size):
    """The twin of protocol.parse on a buffer: (root's expat name, its children)."""
    cdef _Doc doc = _Doc()
    cdef XML_Parser p = capi.ParserCreate_MM(NULL, NULL, "}")
    cdef XML_Status status = XML_STATUS_OK
    cdef XML_Error code
    if p == NULL:
        raise MemoryError()
    doc.parser = p
    try:
        capi.SetUserData(p, <void*>doc)
        if capi.SetHashSalt != NULL:
            capi.SetHashSalt(p, SALT)
        capi.SetUnknownEncodingHandler(p, <XML_UnknownEncodingHandler>capi.DefaultUnknownEncodingHandler, NULL)
        capi.SetStartDoctypeDeclHandler(p, _on_doctype)
        capi.SetElementHandler(p, _on_start, _on_end)
        capi.SetCharacterDataHandler(p, _on_text)
        while size > INT_MAX and status == XML_STATUS_OK:  # as pyexpat does: int-sized pieces
            status = capi.Parse(p, data, INT_MAX, 0)
            data += INT_MAX
            size -= INT_MAX
        if status == XML_STATUS_OK:
            status = capi.Parse(p, data, <int>size, 1)
        if doc.error is not None:
            raise doc.error
        _raise_pending()
        if status == XML_STATUS_ERROR:
            code = capi.GetErrorCode(p)
            err = ExpatError("%s: line %d, column %d" % (
                capi.ErrorString(code).decode("utf-8", "replace"), capi.GetErrorLineNumber(p),
                capi.GetErrorColumnNumber(p)))
            err.code, err.lineno, err.offset = <int>code, capi.GetErrorLineNumber(p), capi.GetErrorColumnNumber(p)
            raise err
    finally:
        capi.ParserFree(p)
        doc.parser = NULL
    for value in doc.top.values():
        if type(value) is dict:
            return doc.root, value
    return doc.root, {}


def parse(body: bytes) -> tuple:
    """The twin of `ctid.drivers.csta.protocol.parse` (same results, same exceptions)."""
    _load()
    cdef bytes raw = bytes(body)
    return _parse(PyBytes_AS_STRING(raw), len(raw))


cdef class FrameParser:
    """Incremental DMCC frame parser, the compiled twin of protocol.PyFrameParser."""

    cdef frozenset _ns
    cdef bytes _buf
    cdef list _errors
    cdef public object frames
    cdef public object errors
    cdef public object broken

    def __init__(self, namespaces=None) -> None:
        _load()
        self._ns = NAMESPACES if namespaces is None else frozenset(namespaces)
        self._buf = b""
        self._errors = []
        self.frames = 0
        self.errors = 0
        self.broken = None

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame waiting in the buffer (non-zero at EOF = a truncated frame)."""
        return len(self._buf)

    def take_errors(self) -> list:
        errors, self._errors = self._errors, []
        return errors

    cdef void _error(self, str reason, bytes raw):
        self.errors += 1
        self._errors.append((reason, raw[:CONTEXT]))

    def feed(self, data) -> list:
        if self.broken is not None:
            return []
        cdef bytes buf = self._buf + data if self._buf else bytes(data)
        cdef const unsigned char* b = <const unsigned char*>PyBytes_AS_STRING(buf)
        cdef Py_ssize_t start = 0, size = len(buf), end
        cdef unsigned int version, length
        cdef list out = []
        while size - start >= HEADER:
            version = (b[start] << 8) | b[start + 1]
            length = (b[start + 2] << 8) | b[start + 3]
            if version != 0 or length <= HEADER or not _digits(b + start + 4):
                self.broken = (f"bad frame header (version {version}, length {length}, "
                               f"invoke id {buf[start + 4:start + 8]!r})")
                self._error(self.broken, buf[start:start + CONTEXT])
                self._buf = b""
                return out
            end = start + length
            if end > size:
                break
            self.frames += 1
            if memcmp(b + start + 4, b"9999", 4) == 0:
                invoke = EVENT_ID
            else:
                invoke = PyUnicode_DecodeUTF8(<const char*>b + start + 4, 4, NULL)
            message = self._decode(invoke, <const char*>b + start + HEADER, length - HEADER, buf, start + HEADER, end)
            if message is not None:
                out.append(message)
            start = end
        self._buf = buf[start:]
        return out

    def decode(self, invoke_id: str, body: bytes):
        """One frame's XML; None (counted, described) when it is not a CSTA message."""
        cdef bytes raw = bytes(body)
        return self._decode(invoke_id, PyBytes_AS_STRING(raw), len(raw), raw, 0, len(raw))

    cdef object _decode(self, str invoke_id, const char* body, Py_ssize_t size, bytes buf, Py_ssize_t lo,
                        Py_ssize_t hi):
        try:
            tag, fields = _parse(body, size)
        except Refused as exc:  # a DTD, too deep: refused before any use
            self._error(f"refused XML ({type(exc).__name__})", buf[lo:min(hi, lo + CONTEXT)])
            return None
        except (ExpatError, ValueError, LookupError) as exc:  # truncated, junk after it, unknown encoding
            self._error(f"malformed XML ({exc})", buf[lo:min(hi, lo + CONTEXT)])
            return None
        ns, sep, name = tag.partition("}")
        if not sep:
            ns, name = "", tag
        if ns not in self._ns:
            self._error(f"wrong namespace {ns or '(none)'!r} for <{name}>", buf[lo:min(hi, lo + CONTEXT)])
            return None
        return Message(invoke_id, name, fields, ns)


cdef inline bint _digits(const unsigned char* p) noexcept:
    return (b'0' <= p[0] <= b'9' and b'0' <= p[1] <= b'9' and b'0' <= p[2] <= b'9' and b'0' <= p[3] <= b'9')
