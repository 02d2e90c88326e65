# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of `ctid.drivers.asterisk.protocol.PyFrameParser`.

Same constructor, attributes, `feed()` and `take_errors()`; the pure-Python
class is the specification and `tests/test_protocol.py` keeps the two equal
(same frames, counters and error reasons for any byte stream, split anywhere).

How it differs inside (never in results):
- bytes are scanned in place with C pointers (SSE2 where available, see amiscan.h);
- the pending partial frame lives in a growable C buffer and the search for
  the frame terminator resumes where the previous call stopped, so feeding a
  large frame in small pieces is linear instead of quadratic;
- noise events are recognised by comparing the event name bytes against a
  length-bucketed table, without creating any object;
- kept frames are split on CRLF / ': ' in place; each key and value is decoded
  straight from the buffer (`errors="replace"`), keys through a small cache.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_SetItem
from cpython.list cimport PyList_Append, PyList_GET_ITEM
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.tuple cimport PyTuple_GET_ITEM
from libc.string cimport memcpy, memmove

import math

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX

# The defaults of protocol.py, repeated: importing protocol from here would be circular
# (protocol imports this module). tests/test_protocol.py checks that they are equal.
_NOISE_EVENTS = frozenset(
    {
        "VarSet", "Newexten", "DeviceStateChange", "Cdr", "NewCallerid", "NewConnectedLine",
        "NewAccountCode", "DialState", "MusicOnHoldStart", "MusicOnHoldStop", "SoftHangupRequest",
        "LocalBridge", "LocalOptimizationBegin", "LocalOptimizationEnd", "BridgeCreate",
        "BridgeDestroy", "BridgeInfoChannel", "RTCPSent", "RTCPReceived", "DTMFBegin", "DTMFEnd",
        "ChallengeSent", "SuccessfulAuth", "ContactStatus", "PeerStatus", "Registry",
        "NewPeerAccount", "Reload", "ExtensionStatus", "PresenceStateChange",
    }
)
_KEEP_VARIABLES = frozenset({"MIXMONITOR_FILENAME"})
_MAX_FRAME = 1 << 20

cdef enum:
    CONTEXT = 120          # bytes of a bad frame kept for the log
    BANNER_LEN = 22        # len(b"Asterisk Call Manager/")
    LONG_NAME = 64         # event names this long or longer share the last length bucket
    KC_SLOTS = 512         # key cache slots (power of two)
    KC_MAXLEN = 40         # longer keys are not cached
    LINES = 256            # line offsets a frame's first pass remembers

cdef const char* BANNER_PREFIX = b"Asterisk Call Manager/"

cdef str R_OVERSIZED = "oversized frame"
cdef str R_NO_TYPE = "frame without Event or Response"
cdef str R_BAD_LINE = "line without 'Key: '"


cdef extern from "amiscan.h":
    Py_ssize_t find_end "ami_find_end"(const char* b, Py_ssize_t i, Py_ssize_t n) noexcept nogil
    Py_ssize_t find_crlf "ami_find_crlf"(const char* b, Py_ssize_t i, Py_ssize_t n) noexcept nogil
    Py_ssize_t find_colon_sp "ami_find_colon_sp"(const char* b, Py_ssize_t i, Py_ssize_t n) noexcept nogil
    Py_ssize_t find_colon "ami_find_colon"(const char* b, Py_ssize_t i, Py_ssize_t n) noexcept nogil
    Py_ssize_t find_sub "ami_find_sub"(const char* b, Py_ssize_t n, const char* s, Py_ssize_t m) noexcept nogil
    bint bytes_eq "ami_eq"(const char* a, const char* b, Py_ssize_t n) noexcept nogil
    unsigned int key_slot "ami_key_slot"(const char* p, Py_ssize_t n, unsigned int slots) noexcept nogil
    object decode "ami_decode"(const char* p, Py_ssize_t n)
    dict new_dict "ami_dict"(Py_ssize_t n)


cdef Py_ssize_t _threshold(object max_frame) except? -2:
    """The C threshold equivalent to `len(frame) > max_frame` for every length >= 0."""
    if isinstance(max_frame, float) and max_frame != max_frame:  # NaN: nothing is ever larger
        return PY_SSIZE_T_MAX
    if max_frame >= PY_SSIZE_T_MAX:
        return PY_SSIZE_T_MAX
    if max_frame < 0:
        return -1
    return <Py_ssize_t>math.floor(max_frame)


cdef class FrameParser:
    """Incremental AMI frame parser (compiled). See PyFrameParser for the contract."""

    cdef public object banner
    cdef public Py_ssize_t frames
    cdef public Py_ssize_t dropped
    cdef public Py_ssize_t errors

    cdef list _errors
    cdef Py_ssize_t _max
    cdef bint _skipping
    # pending bytes (never contains b"\r\n\r\n")
    cdef char* _buf
    cdef Py_ssize_t _len
    cdef Py_ssize_t _cap
    # noise event names, sorted by length; bucket L holds indexes _lenidx[L] .. _lenidx[L+1]-1
    cdef tuple _drop
    cdef Py_ssize_t _lenidx[LONG_NAME + 2]
    # VarSet markers kept: b"\r\nVariable: NAME\r\n"
    cdef tuple _keep
    cdef bint _has_keep
    # key cache: the key bytes and length per slot here, its str in _kc_obj[slot]
    cdef list _kc_obj
    cdef Py_ssize_t _kc_len[KC_SLOTS]
    cdef char _kc_data[KC_SLOTS][KC_MAXLEN]

    def __cinit__(self):
        self._buf = NULL
        self._len = 0
        self._cap = 0

    def __dealloc__(self):
        if self._buf != NULL:
            PyMem_Free(self._buf)
            self._buf = NULL

    def __init__(self, drop=_NOISE_EVENTS, keep_variables=_KEEP_VARIABLES, max_frame=_MAX_FRAME):
        cdef Py_ssize_t i, L
        names = sorted(frozenset(name.encode() for name in drop), key=len)
        self._drop = tuple(names)
        i = 0
        for L in range(LONG_NAME + 2):
            while i < len(names) and min(len(names[i]), LONG_NAME) < L:
                i += 1
            self._lenidx[L] = i
        self._keep = tuple(b"\r\nVariable: " + name.encode() + b"\r\n" for name in keep_variables)
        self._has_keep = len(self._keep) > 0
        self._max = _threshold(max_frame)
        self._skipping = False
        self._len = 0
        self._errors = []
        self._kc_obj = [None] * KC_SLOTS
        for i in range(KC_SLOTS):
            self._kc_len[i] = -1
        self.banner = None
        self.frames = 0
        self.dropped = 0
        self.errors = 0

    def take_errors(self):
        """The errors since the last call, oldest first (reason, first bytes of the input)."""
        errors, self._errors = self._errors, []
        return errors

    # -- internals ---------------------------------------------------------------------------

    cdef int _error(self, str reason, const char* p, Py_ssize_t n) except -1:
        self.errors += 1
        self._errors.append((reason, PyBytes_FromStringAndSize(p, n if n < CONTEXT else CONTEXT)))
        return 0

    cdef int _reserve(self, Py_ssize_t need) except -1:
        cdef Py_ssize_t cap
        cdef char* nb
        if need <= self._cap:
            return 0
        cap = self._cap * 2 if self._cap else 4096
        if cap < need:
            cap = need
        nb = <char*>PyMem_Realloc(self._buf, <size_t>cap)
        if nb == NULL:
            raise MemoryError()
        self._buf = nb
        self._cap = cap
        return 0

    cdef int _keep_bytes(self, const char* p, Py_ssize_t n) except -1:
        """Make p[:n] the pending bytes (p may point into the pending buffer itself)."""
        cdef char* nb
        if p == self._buf:
            pass
        elif self._buf != NULL and p > self._buf and p < self._buf + self._cap:
            memmove(self._buf, p, <size_t>n)
        else:
            self._reserve(n)
            if n:
                memcpy(self._buf, p, <size_t>n)
        self._len = n
        if self._cap > (1 << 16) and n < (self._cap >> 2):  # give back a buffer a big frame grew
            nb = <char*>PyMem_Realloc(self._buf, <size_t>(n if n > 4096 else 4096))
            if nb != NULL:
                self._buf = nb
                self._cap = n if n > 4096 else 4096
        return 0

    cdef inline bint _is_noise(self, const char* name, Py_ssize_t n):
        cdef Py_ssize_t L = n if n < LONG_NAME else LONG_NAME
        cdef Py_ssize_t i
        cdef object cand
        for i in range(self._lenidx[L], self._lenidx[L + 1]):
            cand = <object>PyTuple_GET_ITEM(self._drop, i)
            if PyBytes_GET_SIZE(cand) == n and bytes_eq(PyBytes_AS_STRING(cand), name, n):
                return True
        return False

    cdef bint _kept(self, const char* f, Py_ssize_t n):
        cdef object marker
        for marker in self._keep:
            if find_sub(f, n, PyBytes_AS_STRING(marker), PyBytes_GET_SIZE(marker)) >= 0:
                return True
        return False

    cdef inline object _key(self, const char* p, Py_ssize_t n):
        """decode(p, n), the same str object again for the keys seen before."""
        cdef unsigned int h
        cdef object s
        if n > KC_MAXLEN or n == 0:
            return decode(p, n)
        h = key_slot(p, n, KC_SLOTS)
        if self._kc_len[h] == n and bytes_eq(self._kc_data[h], p, n):
            return <object>PyList_GET_ITEM(self._kc_obj, h)
        s = decode(p, n)
        self._kc_obj[h] = s
        memcpy(self._kc_data[h], p, <size_t>n)
        self._kc_len[h] = n
        return s

    cdef object _parse(self, const char* f, Py_ssize_t n):
        """A dict of the frame f[:n], or None (error recorded) without Event/Response."""
        cdef Py_ssize_t ends[LINES]
        cdef Py_ssize_t colons[LINES]
        cdef Py_ssize_t pos = 0, le, c, count = 0, i
        cdef bint typed = False
        cdef dict fields
        # pass 1: where the lines and their first ': ' are
        while True:
            le = find_crlf(f, pos, n)
            if le < 0:
                le = n
            c = find_colon_sp(f, pos, le)
            if c < 0:  # a line without ': ' sends the whole frame the slow way
                return self._parse_slow(f, n)
            if count < LINES:
                ends[count] = le
                colons[count] = c
            count += 1
            if le == n:
                break
            pos = le + 2
        # pass 2: the dict, sized once
        fields = new_dict(count)
        pos = 0
        for i in range(count):
            if i < LINES:
                le = ends[i]
                c = colons[i]
            else:
                le = find_crlf(f, pos, n)
                if le < 0:
                    le = n
                c = find_colon_sp(f, pos, le)
            if not typed:
                typed = (c - pos == 5 and bytes_eq(f + pos, "Event", 5)) or (
                    c - pos == 8 and bytes_eq(f + pos, "Response", 8)
                )
            PyDict_SetItem(fields, self._key(f + pos, c - pos), decode(f + c + 2, le - c - 2))
            pos = le + 2
        if not typed:
            self._error(R_NO_TYPE, f, n)
            return None
        return fields

    cdef object _parse_slow(self, const char* f, Py_ssize_t n):
        """Some line lacks ': ': every line is split at its first ':' (PyFrameParser._parse_slow)."""
        cdef dict fields = {}
        cdef Py_ssize_t pos = 0, le, c, vs
        cdef bint typed = False
        cdef bytes raw
        while True:
            le = find_crlf(f, pos, n)
            if le < 0:
                le = n
            c = find_colon(f, pos, le)
            if c <= pos:  # no ':' or an empty key
                if le > pos:  # the error shows the line as decoded, re-encoded
                    raw = decode(f + pos, le - pos).encode("utf-8", "replace")
                    self._error(R_BAD_LINE, PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw))
            else:
                vs = c + 1
                if vs < le and f[vs] == 32:
                    vs += 1
                if not typed:
                    typed = (c - pos == 5 and bytes_eq(f + pos, "Event", 5)) or (
                        c - pos == 8 and bytes_eq(f + pos, "Response", 8)
                    )
                PyDict_SetItem(fields, self._key(f + pos, c - pos), decode(f + vs, le - vs))
            if le == n:
                break
            pos = le + 2
        if not typed:
            self._error(R_NO_TYPE, f, n)
            return None
        return fields

    # -- the API -----------------------------------------------------------------------------

    def feed(self, data):
        """Complete, wanted frames in arrival order; a partial frame waits for the next call."""
        cdef list out = []
        cdef bytes chunk
        cdef const char* b
        cdef const char* f
        cdef Py_ssize_t n, dn, start = 0, scan = 0, end, flen, nl, name_end, rest
        cdef Py_ssize_t maxf = self._max
        cdef object parsed
        if type(data) is bytes:
            chunk = <bytes>data
        else:
            chunk = bytes(memoryview(data))
        dn = PyBytes_GET_SIZE(chunk)
        if self._len == 0:
            b = PyBytes_AS_STRING(chunk)  # parse straight from the caller's bytes
            n = dn
        else:
            self._reserve(self._len + dn)
            memcpy(self._buf + self._len, PyBytes_AS_STRING(chunk), <size_t>dn)
            scan = self._len - 3 if self._len > 3 else 0  # the pending bytes hold no terminator
            self._len += dn
            b = self._buf
            n = self._len

        if self._skipping:
            end = find_end(b, scan, n)
            if end < 0:
                if n > 3:
                    self._keep_bytes(b + n - 3, 3)
                else:
                    self._keep_bytes(b, n)
                return out
            self._skipping = False
            start = end + 4

        if self.banner is None and n - start >= BANNER_LEN and bytes_eq(b + start, BANNER_PREFIX, BANNER_LEN):
            nl = find_crlf(b, start, n)
            if nl < 0:
                self._keep_bytes(b + start, n - start)
                return out
            self.banner = decode(b + start, nl - start)
            start = nl + 2

        while True:
            end = find_end(b, start if start > scan else scan, n)
            if end < 0:
                break
            f = b + start
            flen = end - start
            start = end + 4
            self.frames += 1
            if flen > maxf:
                self._error(R_OVERSIZED, f, flen)
                continue
            if flen >= 7 and bytes_eq(f, "Event: ", 7):
                nl = find_crlf(f, 7, flen)
                name_end = nl if nl >= 0 else flen
                if self._is_noise(f + 7, name_end - 7) and not (
                    self._has_keep
                    and name_end == 13
                    and bytes_eq(f + 7, "VarSet", 6)
                    and self._kept(f, flen)
                ):
                    self.dropped += 1
                    continue
            parsed = self._parse(f, flen)
            if parsed is not None:
                PyList_Append(out, parsed)

        rest = n - start
        if rest > maxf:
            self.frames += 1
            self._error(R_OVERSIZED, b + start, rest)
            self._skipping = True
            if rest > 3:
                start = n - 3
                rest = 3
        self._keep_bytes(b + start, rest)
        return out

