# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""One recording index segment, compiled: the twin of `ctid.recordings.pyindex.PySegment`.

Same API, same results (tests/test_recordings_index.py compares them with hypothesis), read
the pure twin for the semantics. Recordings are sorted by (start, database id) in column
arrays (`array.array`, taken over from the `Columns` given when already sorted, so a bulk
build from the database copies nothing); posting lists are CSR arrays (offsets per code,
ascending positions) per agent, queue, tag and last-4-digits of either number. A query
walks the smallest of its time range and the posting lists it may use. Beside the agent
postings, a `Post` each (start, id and a duration code) serves the one-agent search
(`search_agent`, which the pure twin does not have: the index's pure path is its spec).
"""

from array import array

cimport cpython.array as carray

from libc.math cimport INFINITY, floor, isnan
from libc.stdlib cimport qsort
from libc.string cimport memcpy

from ctid.recordings.columns import TYPECODES, Columns

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define CTID_PREFETCH(p) __builtin_prefetch((const void*)(p))
    #else
    #define CTID_PREFETCH(p) ((void)0)
    #endif
    """
    void CTID_PREFETCH(const void* p) nogil

DEF PREFETCH_AHEAD = 8  # candidates from a posting list are scattered: ask for rows this far ahead
DEF PREFETCH_LINES = 16  # a one-agent search asks for at most this many lines of posts ahead
DEF STRIDE = 64  # the start directory keeps every 64th start: small enough to stay in cache
DEF SRC_RANGE = 0
DEF SRC_AGENT = 1
DEF SRC_QUEUE = 2
DEF SRC_OTHER = 3

DEF SUFFIX_CODES = 10000
DEF SUFFIX_DIGITS = 4
# An agent posting's duration code (1 byte): code c < DUR_READ means DUR_EDGE[c] <= duration <
# DUR_EDGE[c + 1]. Whole seconds below 2 minutes, 5 s up to 10 minutes, 1 minute up to 49 minutes,
# so the bounds people filter on (30 s, 1, 2, 5, 10, 15, 30 minutes) fall on edges and decide on the
# code alone. DUR_READ means "read the row": a longer or negative duration, or a deleted recording.
DEF DUR_READ = 255
cdef double DUR_EDGE[256]
for _k in range(256):
    DUR_EDGE[_k] = _k if _k <= 120 else 120 + 5 * (_k - 120) if _k <= 216 else 600 + 60 * (_k - 216)


cdef inline unsigned char _dur_code(double d) noexcept:
    cdef int c
    if not (0.0 <= d < DUR_EDGE[DUR_READ]):
        return DUR_READ
    c = <int>d if d < 120.0 else 120 + <int>((d - 120.0) / 5.0) if d < 600.0 else 216 + <int>((d - 600.0) / 60.0)
    while c > 0 and d < DUR_EDGE[c]:  # (division may round across an edge)
        c -= 1
    while c < DUR_READ - 1 and d >= DUR_EDGE[c + 1]:
        c += 1
    return <unsigned char>c


cdef unsigned char VOICEMAIL = 1
cdef unsigned char DELETED = 2
cdef long long POW10[19]
POW10[0] = 1
for _k in range(1, 19):
    POW10[_k] = POW10[_k - 1] * 10

_SCALARS = tuple(name for name in TYPECODES if name not in ("tag_rows", "tag_codes"))

# qsort has no context argument: the arrays being sorted, while the GIL is held.
cdef double* _sort_start
cdef long long* _sort_rowid


cdef int _cmp(const void* a, const void* b) noexcept nogil:
    cdef long long i = (<const long long*>a)[0]
    cdef long long j = (<const long long*>b)[0]
    if _sort_start[i] < _sort_start[j]:
        return -1
    if _sort_start[i] > _sort_start[j]:
        return 1
    if _sort_rowid[i] < _sort_rowid[j]:
        return -1
    if _sort_rowid[i] > _sort_rowid[j]:
        return 1
    return 0


cdef int _cmp_int(const void* a, const void* b) noexcept nogil:
    cdef int x = (<const int*>a)[0]
    cdef int y = (<const int*>b)[0]
    return (x > y) - (x < y)


cdef object _gather(object src, long long[::1] perm, Py_ssize_t n):
    """A new array of src's type with src[perm[k]] at k."""
    cdef Py_ssize_t size = src.itemsize, k
    out = array(src.typecode, bytes(n * size))
    if n == 0:
        return out
    cdef unsigned char[::1] d = memoryview(out).cast("B")
    cdef const unsigned char[::1] s = memoryview(src).cast("B")
    for k in range(n):
        memcpy(&d[k * size], &s[perm[k] * size], size)
    return out


cdef inline bint _number(int mode, long long want, int want_len, long long value, int length) noexcept:
    if length == 0 or length < want_len:
        return False
    if mode == 0:
        return length == want_len and value == want
    if mode == 1:
        return value // POW10[length - want_len] == want
    return value % POW10[want_len] == want


cdef inline bint _in(const int[::1] codes, int value) noexcept:
    cdef Py_ssize_t k
    for k in range(codes.shape[0]):
        if codes[k] == value:
            return True
    return False


# An agent posting, in one array per segment (16 bytes): its recording's start, and its database id
# with the duration code (DUR_EDGE) in the top byte. A one-agent search reads nothing else.
cdef struct Post:
    double start
    unsigned long long key

DEF KEY_SHIFT = 56
cdef unsigned long long KEY_ID = (1ULL << KEY_SHIFT) - 1  # ids from 0 to 2**56 - 1 fit beside the code


cdef inline unsigned long long _post_key(long long rowid, unsigned char code) noexcept:
    if rowid < 0 or <unsigned long long>rowid > KEY_ID:  # does not fit: the row has it
        return (<unsigned long long>DUR_READ) << KEY_SHIFT
    return ((<unsigned long long>code) << KEY_SHIFT) | <unsigned long long>rowid


cdef inline Py_ssize_t _first_ge(const Post* st, Py_ssize_t a, Py_ssize_t b, double x) noexcept nogil:
    """First k in [a, b) with st[k].start.start >= x (b if none); the starts ascend. Same answer as a bisection, but
    it starts where x falls if the starts are evenly spread and gallops from there, so it touches
    a few cache lines instead of one per halving."""
    cdef Py_ssize_t g, lo, hi, step, probe, m
    if a >= b or not (st[a].start < x):
        return a
    if st[b - 1].start < x:
        return b
    # st[a].start < x <= st[b - 1].start: the answer is in (a, b - 1]
    g = a + <Py_ssize_t>((x - st[a].start) / (st[b - 1].start - st[a].start) * (b - 1 - a))
    if g <= a:
        g = a + 1
    if g > b - 1:
        g = b - 1
    if st[g].start < x:  # answer in (g, b - 1]
        lo = g + 1
        hi = b - 1
        step = 1
        while True:
            probe = g + step
            if probe >= b - 1:
                break
            if st[probe].start >= x:
                hi = probe
                break
            lo = probe + 1
            step <<= 1
    else:  # answer in (a, g]
        hi = g
        lo = a + 1
        step = 1
        while True:
            probe = g - step
            if probe <= a:
                break
            if st[probe].start < x:
                lo = probe + 1
                break
            hi = probe
            step <<= 1
    while lo < hi:
        m = (lo + hi) >> 1
        if st[m].start < x:
            lo = m + 1
        else:
            hi = m
    return lo


cdef struct CPlan:
    double lo, hi, cur_start, min_dur, max_dur, min_qa, max_qa
    long long cur_rowid, caller_value, called_value, sfx_value
    int newest, has_cursor, voicemail, tag, qa_filter
    int caller_mode, caller_len, called_mode, called_len, sfx_len
    int src  # which posting list the candidates come from: its own filter needs no check


_NONE = array("i")
cdef carray.array _DOUBLES = array("d")  # the template of the starts a search_agent returns


cdef class _Sets:
    """The code sets of a plan as int arrays (empty: any)."""
    cdef int[::1] agents, queues, teams, directions, dispositions

    def __init__(self, plan):
        # most sets are empty: share one empty array instead of making five per query
        self.agents = array("i", plan.agents) if plan.agents else _NONE
        self.queues = array("i", plan.queues) if plan.queues else _NONE
        self.teams = array("i", plan.teams) if plan.teams else _NONE
        self.directions = array("i", plan.directions) if plan.directions else _NONE
        self.dispositions = array("i", plan.dispositions) if plan.dispositions else _NONE


cdef CPlan _cplan(plan):
    cdef CPlan p
    p.lo = plan.lo; p.hi = plan.hi; p.newest = plan.newest; p.has_cursor = plan.has_cursor
    p.cur_start = plan.cur_start; p.cur_rowid = plan.cur_rowid
    p.min_dur = plan.min_dur; p.max_dur = plan.max_dur; p.voicemail = plan.voicemail; p.tag = plan.tag
    p.qa_filter = plan.qa_filter; p.min_qa = plan.min_qa; p.max_qa = plan.max_qa
    p.caller_mode = plan.caller_mode; p.caller_value = plan.caller_value; p.caller_len = plan.caller_len
    p.called_mode = plan.called_mode; p.called_value = plan.called_value; p.called_len = plan.called_len
    p.sfx_value = plan.sfx_value; p.sfx_len = plan.sfx_len
    p.src = SRC_RANGE
    return p


cdef inline bint _plain(CPlan* p, _Sets s) noexcept:
    """Does the plan filter rows on nothing but the time range and the cursor (and deletion)?"""
    return (p.min_dur == -INFINITY and p.max_dur == INFINITY and p.voicemail < 0 and p.tag < 0 and not p.qa_filter
            and p.caller_mode < 0 and p.called_mode < 0 and p.sfx_len == 0 and s.agents.shape[0] == 0
            and s.queues.shape[0] == 0 and s.teams.shape[0] == 0 and s.directions.shape[0] == 0
            and s.dispositions.shape[0] == 0)


cdef class Segment:
    """Recordings sorted by (start, id), with posting lists; see the module docstring."""

    cdef readonly Py_ssize_t n
    cdef dict _cols
    cdef double[::1] start, duration, qa
    cdef long long[::1] rowid, caller, called
    cdef int[::1] agent, queue, team
    cdef signed char[::1] direction, disposition, caller_len, called_len
    cdef unsigned char[::1] flags
    cdef object _posts
    cdef long long[::1] agent_off, queue_off, tag_off, sfx_off
    cdef int[::1] agent_pos, queue_pos, tag_pos, sfx_pos
    cdef double[::1] dir_start
    cdef object _dir
    cdef object _agent_posts  # the array holding `posts`
    cdef Post* posts  # one per agent posting (agent_pos order): the time cut and the page never touch the columns
    cdef double[::1] agent_span  # per agent code: the first and the last start of its posts

    def __init__(self, cols):
        global _sort_start, _sort_rowid
        cdef Py_ssize_t n = len(cols), i, j
        cdef double[::1] st = cols.start
        cdef long long[::1] rid = cols.rowid
        cdef bint ordered = True
        for i in range(1, n):
            if st[i - 1] > st[i] or (st[i - 1] == st[i] and rid[i - 1] >= rid[i]):
                ordered = False
                break
        cdef long long[::1] perm
        cdef long long[::1] where = array("q", bytes(8 * n))
        self._cols = {}
        if ordered:
            for name in _SCALARS:  # already in order: take the arrays over, copy nothing
                self._cols[name] = getattr(cols, name)
            for i in range(n):
                where[i] = i
        else:
            perm = array("q", range(n))
            if n:
                _sort_start = &st[0]
                _sort_rowid = &rid[0]
                qsort(&perm[0], n, sizeof(long long), _cmp)
            for i in range(n):
                where[perm[i]] = i
            for name in _SCALARS:
                self._cols[name] = _gather(getattr(cols, name), perm, n)
        self.n = n
        c = self._cols
        self.start = c["start"]; self.rowid = c["rowid"]; self.duration = c["duration"]; self.qa = c["qa"]
        self.agent = c["agent"]; self.queue = c["queue"]; self.team = c["team"]
        self.direction = c["direction"]; self.disposition = c["disposition"]; self.flags = c["flags"]
        self.caller = c["caller"]; self.caller_len = c["caller_len"]
        self.called = c["called"]; self.called_len = c["called_len"]
        self._dir = array("d", bytes(8 * ((n + STRIDE - 1) // STRIDE)))
        self.dir_start = self._dir
        for i in range(0, n, STRIDE):
            self.dir_start[i // STRIDE] = self.start[i]
        self._posts = {}
        self._postings("agent", self.agent)
        self._postings("queue", self.queue)
        self._tag_postings(cols.tag_rows, cols.tag_codes, where)
        self._sfx_postings()
        p = self._posts
        self.agent_off, self.agent_pos = p["agent"]
        self.queue_off, self.queue_pos = p["queue"]
        self.tag_off, self.tag_pos = p["tag"]
        self.sfx_off, self.sfx_pos = p["sfx"]
        self._agent_posts = array("q", bytes(sizeof(Post) * (self.agent_pos.shape[0] + 1)))  # (+1: never empty)
        cdef long long[::1] raw = self._agent_posts
        self.posts = <Post*>&raw[0]
        for i in range(self.agent_pos.shape[0]):
            j = self.agent_pos[i]
            self.posts[i].start = self.start[j]
            self.posts[i].key = _post_key(self.rowid[j], DUR_READ if self.flags[j] & DELETED else _dur_code(self.duration[j]))
        cdef Py_ssize_t ncodes = self.agent_off.shape[0] - 1
        self.agent_span = array("d", bytes(16 * max(ncodes, 1)))
        for i in range(ncodes):
            if self.agent_off[i + 1] > self.agent_off[i]:
                self.agent_span[2 * i] = self.posts[self.agent_off[i]].start
                self.agent_span[2 * i + 1] = self.posts[self.agent_off[i + 1] - 1].start

    cdef void _postings(self, str name, int[::1] codes):
        cdef Py_ssize_t i, n = self.n, ncodes = 0
        for i in range(n):
            if codes[i] + 1 > ncodes:
                ncodes = codes[i] + 1
        off_a = array("q", bytes(8 * (ncodes + 1)))
        cdef long long[::1] off = off_a
        for i in range(n):
            if codes[i] >= 0:
                off[codes[i] + 1] += 1
        for i in range(ncodes):
            off[i + 1] += off[i]
        pos_a = array("i", bytes(4 * off[ncodes]))
        cdef int[::1] pos = pos_a
        cdef long long[::1] fill = array("q", off_a)
        for i in range(n):
            if codes[i] >= 0:
                pos[fill[codes[i]]] = i
                fill[codes[i]] += 1
        self._posts[name] = (off_a, pos_a)

    cdef void _tag_postings(self, object rows_a, object codes_a, long long[::1] where):
        cdef int[::1] rows = rows_a
        cdef int[::1] codes = codes_a
        cdef Py_ssize_t i, m = rows.shape[0], ncodes = 0
        for i in range(m):
            if codes[i] + 1 > ncodes:
                ncodes = codes[i] + 1
        off_a = array("q", bytes(8 * (ncodes + 1)))
        cdef long long[::1] off = off_a
        for i in range(m):
            off[codes[i] + 1] += 1
        for i in range(ncodes):
            off[i + 1] += off[i]
        pos_a = array("i", bytes(4 * m))
        cdef int[::1] pos = pos_a
        cdef long long[::1] fill = array("q", off_a)
        for i in range(m):
            pos[fill[codes[i]]] = <int>where[rows[i]]
            fill[codes[i]] += 1
        for i in range(ncodes):  # rows came in any order: each list must ascend
            if off[i + 1] - off[i] > 1:
                qsort(&pos[off[i]], off[i + 1] - off[i], sizeof(int), _cmp_int)
        self._posts["tag"] = (off_a, pos_a)

    cdef void _sfx_postings(self):
        cdef Py_ssize_t i, n = self.n
        cdef long long c1, c2
        off_a = array("q", bytes(8 * (SUFFIX_CODES + 1)))
        cdef long long[::1] off = off_a
        for i in range(n):
            c1 = self.caller[i] % SUFFIX_CODES if self.caller_len[i] >= SUFFIX_DIGITS else -1
            c2 = self.called[i] % SUFFIX_CODES if self.called_len[i] >= SUFFIX_DIGITS else -1
            if c1 >= 0:
                off[c1 + 1] += 1
            if c2 >= 0 and c2 != c1:
                off[c2 + 1] += 1
        for i in range(SUFFIX_CODES):
            off[i + 1] += off[i]
        pos_a = array("i", bytes(4 * off[SUFFIX_CODES]))
        cdef int[::1] pos = pos_a
        cdef long long[::1] fill = array("q", off_a)
        for i in range(n):
            c1 = self.caller[i] % SUFFIX_CODES if self.caller_len[i] >= SUFFIX_DIGITS else -1
            c2 = self.called[i] % SUFFIX_CODES if self.called_len[i] >= SUFFIX_DIGITS else -1
            if c1 >= 0:
                pos[fill[c1]] = i
                fill[c1] += 1
            if c2 >= 0 and c2 != c1:
                pos[fill[c2]] = i
                fill[c2] += 1
        self._posts["sfx"] = (off_a, pos_a)

    def __len__(self):
        return self.n

    # -- queries ------------------------------------------------------------------------------

    cdef Py_ssize_t _lower(self, double x) noexcept:
        """First position whose start is >= x: the directory first, then one block of STRIDE rows
        (a binary search over all the starts would miss the cache at almost every step)."""
        cdef Py_ssize_t lo = 0, hi = self.dir_start.shape[0], mid
        while lo < hi:
            mid = (lo + hi) >> 1
            if self.dir_start[mid] < x:
                lo = mid + 1
            else:
                hi = mid
        # start[(lo - 1) * STRIDE] < x <= start[lo * STRIDE]: the answer is in that block
        hi = self.n if lo == self.dir_start.shape[0] else lo * STRIDE
        lo = 0 if lo == 0 else (lo - 1) * STRIDE + 1
        while lo < hi:
            mid = (lo + hi) >> 1
            if self.start[mid] < x:
                lo = mid + 1
            else:
                hi = mid
        return lo

    cdef Py_ssize_t _key_bound(self, double s, long long r, bint upper) noexcept:
        """First position whose (start, id) is >= (upper: >) (s, r)."""
        cdef Py_ssize_t lo = 0, hi = self.n, mid
        while lo < hi:
            mid = (lo + hi) >> 1
            if self.start[mid] < s or (self.start[mid] == s and (self.rowid[mid] < r or (upper and self.rowid[mid] == r))):
                lo = mid + 1
            else:
                hi = mid
        return lo

    @staticmethod
    cdef Py_ssize_t _post_lower(const int[::1] pos, Py_ssize_t a, Py_ssize_t b, Py_ssize_t x) noexcept:
        while a < b:
            mid = (a + b) >> 1
            if pos[mid] < x:
                a = mid + 1
            else:
                b = mid
        return a

    cdef inline void _prefetch(self, CPlan* p, _Sets s, Py_ssize_t i) noexcept:
        """Start loading the columns `_match` and the result will read for row i."""
        CTID_PREFETCH(&self.flags[i])
        CTID_PREFETCH(&self.duration[i])
        CTID_PREFETCH(&self.start[i])
        CTID_PREFETCH(&self.rowid[i])
        if s.agents.shape[0] and p.src != SRC_AGENT:
            CTID_PREFETCH(&self.agent[i])
        if s.queues.shape[0] and p.src != SRC_QUEUE:
            CTID_PREFETCH(&self.queue[i])
        if s.teams.shape[0]:
            CTID_PREFETCH(&self.team[i])
        if p.caller_mode >= 0 or p.sfx_len:
            CTID_PREFETCH(&self.caller[i])
            CTID_PREFETCH(&self.caller_len[i])
        if p.called_mode >= 0 or p.sfx_len:
            CTID_PREFETCH(&self.called[i])
            CTID_PREFETCH(&self.called_len[i])

    cdef bint _match(self, CPlan* p, _Sets s, Py_ssize_t i) noexcept:
        cdef double d
        if self.flags[i] & DELETED:
            return False
        if s.agents.shape[0] and p.src != SRC_AGENT and not _in(s.agents, self.agent[i]):
            return False
        if s.queues.shape[0] and p.src != SRC_QUEUE and not _in(s.queues, self.queue[i]):
            return False
        if s.teams.shape[0] and not _in(s.teams, self.team[i]):
            return False
        if s.directions.shape[0] and not _in(s.directions, self.direction[i]):
            return False
        if s.dispositions.shape[0] and not _in(s.dispositions, self.disposition[i]):
            return False
        d = self.duration[i]
        if d < p.min_dur or d > p.max_dur:
            return False
        if p.voicemail >= 0 and (<bint>(self.flags[i] & VOICEMAIL)) != (<bint>p.voicemail):
            return False
        if p.qa_filter:
            d = self.qa[i]
            if isnan(d) or d < p.min_qa or d > p.max_qa:
                return False
        if p.caller_mode >= 0 and not _number(p.caller_mode, p.caller_value, p.caller_len,
                                              self.caller[i], self.caller_len[i]):
            return False
        if p.called_mode >= 0 and not _number(p.called_mode, p.called_value, p.called_len,
                                              self.called[i], self.called_len[i]):
            return False
        if p.sfx_len and not (_number(2, p.sfx_value, p.sfx_len, self.caller[i], self.caller_len[i])
                              or _number(2, p.sfx_value, p.sfx_len, self.called[i], self.called_len[i])):
            return False
        return True

    cdef int _source(self, CPlan* p, _Sets s, Py_ssize_t lo, Py_ssize_t hi,
                     const int** out_pos, Py_ssize_t* out_a, Py_ssize_t* out_b) noexcept:
        """Pick the candidates: 0 = the range [lo, hi), 1 = positions out_pos[a:b], -1 = none at all."""
        cdef Py_ssize_t best = hi - lo, a, b
        cdef int kind = 0
        cdef long long code
        cdef int which
        cdef const long long* off
        cdef const int* pos
        cdef Py_ssize_t ncodes
        if p.tag >= 0:  # the tag is checked only here: its posting list is the source
            if p.tag + 1 >= self.tag_off.shape[0]:
                return -1
            a = Segment._post_lower(self.tag_pos, self.tag_off[p.tag], self.tag_off[p.tag + 1], lo)
            b = Segment._post_lower(self.tag_pos, a, self.tag_off[p.tag + 1], hi)
            out_pos[0] = &self.tag_pos[0] if self.tag_pos.shape[0] else NULL
            out_a[0] = a
            out_b[0] = b
            p.src = SRC_OTHER
            return 1
        for which in range(5):
            if which == 0 and s.agents.shape[0] == 1:
                code = s.agents[0]; off_v = self.agent_off; pos_v = self.agent_pos
            elif which == 1 and s.queues.shape[0] == 1:
                code = s.queues[0]; off_v = self.agent_off; off_v = self.queue_off; pos_v = self.queue_pos
            elif which == 2 and p.sfx_len >= SUFFIX_DIGITS:
                code = p.sfx_value % SUFFIX_CODES; off_v = self.sfx_off; pos_v = self.sfx_pos
            elif which == 3 and p.caller_mode == 2 and p.caller_len >= SUFFIX_DIGITS:
                code = p.caller_value % SUFFIX_CODES; off_v = self.sfx_off; pos_v = self.sfx_pos
            elif which == 4 and p.called_mode == 2 and p.called_len >= SUFFIX_DIGITS:
                code = p.called_value % SUFFIX_CODES; off_v = self.sfx_off; pos_v = self.sfx_pos
            else:
                continue
            if code < 0 or code + 1 >= off_v.shape[0]:
                return -1  # nobody here has that agent/queue
            a = Segment._post_lower(pos_v, off_v[code], off_v[code + 1], lo)
            b = Segment._post_lower(pos_v, a, off_v[code + 1], hi)
            if b - a < best:
                best = b - a
                kind = 1
                p.src = SRC_AGENT if which == 0 else SRC_QUEUE if which == 1 else SRC_OTHER
                out_pos[0] = &pos_v[0] if pos_v.shape[0] else NULL
                out_a[0] = a
                out_b[0] = b
        return kind

    cdef bint _bounds(self, CPlan* p, Py_ssize_t* lo, Py_ssize_t* hi) noexcept:
        lo[0] = self._lower(p.lo)
        hi[0] = self._lower(p.hi)
        if p.has_cursor:
            if p.newest:
                hi[0] = min(hi[0], self._key_bound(p.cur_start, p.cur_rowid, False))
            else:
                lo[0] = max(lo[0], self._key_bound(p.cur_start, p.cur_rowid, True))
        return lo[0] < hi[0]

    def search(self, plan, Py_ssize_t need):
        """Up to `need` matches of `plan` in its order: (starts, ids) as arrays ('d', 'q')."""
        cdef CPlan p = _cplan(plan)
        cdef _Sets s = _Sets(plan)
        cdef Py_ssize_t lo, hi, a = 0, b = 0, k, i, got = 0
        cdef const int* pos = NULL
        if need <= 0 or not self._bounds(&p, &lo, &hi):
            return array("d"), array("q")
        cdef int kind = self._source(&p, s, lo, hi, &pos, &a, &b)
        if kind < 0:
            return array("d"), array("q")
        if kind == 0:
            a, b = lo, hi
        if need > b - a:
            need = b - a
        starts_a, ids_a = array("d", bytes(8 * need)), array("q", bytes(8 * need))
        cdef double[::1] starts = starts_a
        cdef long long[::1] ids = ids_a
        for k in range(b - a):
            if got >= need:
                break
            if p.newest:
                i = (b - 1 - k) if kind == 0 else pos[b - 1 - k]
                if kind == 1 and k + PREFETCH_AHEAD < b - a:
                    self._prefetch(&p, s, pos[b - 1 - k - PREFETCH_AHEAD])
            else:
                i = (a + k) if kind == 0 else pos[a + k]
                if kind == 1 and k + PREFETCH_AHEAD < b - a:
                    self._prefetch(&p, s, pos[a + k + PREFETCH_AHEAD])
            if self._match(&p, s, i):
                starts[got] = self.start[i]
                ids[got] = self.rowid[i]
                got += 1
        if got < need:  # (the memoryviews still hold the arrays: a resize would be refused)
            return starts_a[:got], ids_a[:got]
        return starts_a, ids_a

    def search_agent(self, int code, q):
        """`search` of the `Query` q restricted to the one agent `code`, for a q whose only other
        fields are since, until, min_duration, max_duration, order and limit (the index checks
        that, and access control): up to q.limit + 1 rows (one more: is there a next page?), as
        (ids, starts), a list and an array('d'), in q's order. One call from the query to the rows.

        Reads the agent's postings only, which are contiguous: the day is cut on their starts, the
        duration range is decided on their duration codes, and ids come from beside the starts. Only
        a posting whose code cannot decide (DUR_READ, or a bound inside its code's range) reads its
        row: the cache misses on the ~30 scattered rows of an agent's day were most of q1's time."""
        v = q.since
        cdef double lo = -INFINITY if v is None else v
        v = q.until
        cdef double hi = INFINITY if v is None else v
        v = q.min_duration
        cdef double min_dur = -INFINITY if v is None else v
        v = q.max_duration
        cdef double max_dur = INFINITY if v is None else v
        cdef bint newest = q.order == "newest"
        cdef Py_ssize_t need = q.limit
        if need <= 0:
            return [], carray.clone(_DOUBLES, 0, False)
        need += 1
        cdef Py_ssize_t a, b, m, k, got = 0, i
        cdef double d
        cdef unsigned long long key
        cdef unsigned char dc
        cdef carray.array starts
        ids = []
        if need <= 0 or code < 0 or code + 1 >= self.agent_off.shape[0] or not lo < hi:
            return ids, carray.clone(_DOUBLES, 0, False)
        cdef Py_ssize_t a0 = self.agent_off[code], b0 = self.agent_off[code + 1]
        cdef const Post* post = self.posts
        cdef double first = self.agent_span[2 * code], last = self.agent_span[2 * code + 1]
        if b0 - a0 > 1 and last > first:
            # Where the range falls if the agent's starts are evenly spread: ask for those cache
            # lines now, so their misses overlap with the ones the cut takes to get there.
            a = a0 + <Py_ssize_t>((min(max(lo, first), last) - first) / (last - first) * (b0 - 1 - a0))
            b = a0 + <Py_ssize_t>((min(max(hi, first), last) - first) / (last - first) * (b0 - 1 - a0))
            for k in range(max(a - 4, a0), min(b + 4, b0, a + 4 * PREFETCH_LINES), 4):  # 4 posts a line
                CTID_PREFETCH(&post[k])
        a = _first_ge(post, a0, b0, lo)
        b = _first_ge(post, a, b0, hi)
        if need > b - a:
            need = b - a
        starts = carray.clone(_DOUBLES, need, False)
        for k in range(b - a):
            if got == need:
                break
            m = b - 1 - k if newest else a + k
            key = post[m].key
            dc = <unsigned char>(key >> KEY_SHIFT)
            if dc != DUR_READ:  # the duration is in [DUR_EDGE[dc], DUR_EDGE[dc + 1])
                if DUR_EDGE[dc + 1] <= min_dur or DUR_EDGE[dc] > max_dur:
                    continue
                if DUR_EDGE[dc] < min_dur or DUR_EDGE[dc + 1] > max_dur:  # a bound falls inside
                    d = self.duration[self.agent_pos[m]]
                    if d < min_dur or d > max_dur:
                        continue
                ids.append(<long long>(key & KEY_ID))
            else:  # the row decides (and has the id)
                i = self.agent_pos[m]
                if self.flags[i] & DELETED:
                    continue
                d = self.duration[i]
                if d < min_dur or d > max_dur:
                    continue
                ids.append(self.rowid[i])
            starts.data.as_doubles[got] = post[m].start
            got += 1
        if got < need:
            carray.resize(starts, got)
        return ids, starts

    cdef Py_ssize_t _walk(self, plan, long long[::1] counts, double origin, double width, Py_ssize_t buckets):
        """Count matches; with `counts`, also add each up at [(queue + 1) * buckets + bucket]."""
        cdef CPlan p = _cplan(plan)
        cdef _Sets s = _Sets(plan)
        cdef Py_ssize_t lo, hi, a = 0, b = 0, k, i, total = 0, nq = 0
        cdef const int* pos = NULL
        cdef double f
        if counts is not None:
            nq = counts.shape[0] // buckets
        if not self._bounds(&p, &lo, &hi):
            return 0
        cdef int kind = self._source(&p, s, lo, hi, &pos, &a, &b)
        if kind < 0:
            return 0
        if kind == 0:
            a, b = lo, hi
            if _plain(&p, s):  # a time range (and cursor) only: no column but flags, start and queue
                for i in range(a, b):
                    if self.flags[i] & DELETED:
                        continue
                    total += 1
                    if nq:
                        f = floor((self.start[i] - origin) / width)
                        if 0 <= f < buckets and self.queue[i] + 1 < nq:
                            counts[(self.queue[i] + 1) * buckets + <Py_ssize_t>f] += 1
                return total
        for k in range(a, b):
            i = k if kind == 0 else pos[k]
            if kind == 1 and k + PREFETCH_AHEAD < b:
                self._prefetch(&p, s, pos[k + PREFETCH_AHEAD])
            if self._match(&p, s, i):
                total += 1
                if nq:
                    f = floor((self.start[i] - origin) / width)
                    if 0 <= f < buckets and self.queue[i] + 1 < nq:
                        counts[(self.queue[i] + 1) * buckets + <Py_ssize_t>f] += 1
        return total

    def count(self, plan):
        """How many recordings match `plan` (its cursor applies, its order does not matter)."""
        return self._walk(plan, None, 0.0, 1.0, 1)

    def count_by_queue(self, plan, double origin, double width, Py_ssize_t buckets):
        """Matching recordings per (queue code, bucket): bucket k is [origin + k*width, origin + (k+1)*width)."""
        cdef Py_ssize_t nq = self.queue_off.shape[0], q, k  # queue codes 0..nq-2, plus "no queue"
        counts_a = array("q", bytes(8 * nq * buckets))
        cdef long long[::1] counts = counts_a
        self._walk(plan, counts, origin, width, buckets)
        out = {}
        for q in range(nq):
            for k in range(buckets):
                if counts[q * buckets + k]:
                    out[(q - 1, k)] = counts[q * buckets + k]
        return out

    # -- changes ------------------------------------------------------------------------------

    def delete(self, double start, long long rowid):
        """Mark the recording (start, id) deleted; False if it is not here (or already deleted)."""
        cdef Py_ssize_t i = self._key_bound(start, rowid, False), k
        if i >= self.n or self.start[i] != start or self.rowid[i] != rowid or self.flags[i] & DELETED:
            return False
        self.flags[i] |= DELETED
        if self.agent[i] >= 0:  # the agent posting's code says "read the row", which is now deleted
            k = Segment._post_lower(self.agent_pos, self.agent_off[self.agent[i]], self.agent_off[self.agent[i] + 1], i)
            self.posts[k].key |= (<unsigned long long>DUR_READ) << KEY_SHIFT
        return True

    def live(self):
        """Recordings not deleted."""
        cdef Py_ssize_t i, total = 0
        for i in range(self.n):
            if not self.flags[i] & DELETED:
                total += 1
        return total

    def columns(self):
        """The recordings not deleted, as columns (for a merge into a bigger segment)."""
        cdef Py_ssize_t i, k = 0, j, t
        cdef long long[::1] keep = array("q", bytes(8 * self.n))
        cdef long long[::1] new = array("q", bytes(8 * self.n))
        for i in range(self.n):
            new[i] = -1
            if not self.flags[i] & DELETED:
                keep[k] = i
                new[i] = k
                k += 1
        out = Columns()
        for name in _SCALARS:
            setattr(out, name, _gather(self._cols[name], keep, k))
        rows_a, codes_a = array("i"), array("i")
        cdef Py_ssize_t ntags = self.tag_off.shape[0] - 1
        for t in range(ntags):  # tag by tag, positions ascending: what the pure twin exports
            for j in range(self.tag_off[t], self.tag_off[t + 1]):
                if new[self.tag_pos[j]] >= 0:
                    rows_a.append(new[self.tag_pos[j]])
                    codes_a.append(t)
        out.tag_rows = rows_a
        out.tag_codes = codes_a
        return out

    @property
    def nbytes(self):
        """Bytes held by the columns and posting lists (as 4-byte positions)."""
        cols = (sum(a.itemsize * len(a) for a in self._cols.values()) + 8 * self.dir_start.shape[0]
                + sizeof(Post) * self.agent_pos.shape[0] + 8 * self.agent_span.shape[0])
        return cols + 4 * (self.agent_pos.shape[0] + self.queue_pos.shape[0] + self.tag_pos.shape[0]
                           + self.sfx_pos.shape[0])
