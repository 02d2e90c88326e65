# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of `ctid.acd.matcher.PyMatcher`: same API, decisions, explanations and errors.

The pure-Python class is the specification (docs/routing.md); tests/test_acd_matcher.py drives
both with random operation sequences and requires identical results.

How it differs inside (never in results):
- names (queues, agents, skills) are interned to dense ints at the API boundary; calls live in
  reusable slots; everything a decision touches is a C struct or array;
- skill levels are one dense byte matrix (agent x skill), so a qualification test is one byte
  load per required skill;
- the ready agents of each (queue, tier) and the waiting calls of each queue are sorted C arrays
  (`acdcore.h`), the timers a C heap;
- a call's requirement after each escalation step is computed once, at offer, into one buffer.
Slow-path validation (add_queue, add_agent, set_stats) is the shared code of ctid.acd.model.
"""

from libc.stdlib cimport free, malloc, realloc, calloc
from libc.string cimport memcpy, memset
from cpython.long cimport PyLong_AsLongAndOverflow
from cpython.dict cimport PyDict_Next, PyDict_SetDefault
from cpython.object cimport PyObject

from ctid.acd.model import (
    STATES, STRATEGIES, MatchError, check_agent, check_level, check_now, check_priority,
    check_queue, check_stats,
)

cdef extern from "acdcore.h":
    ctypedef struct acd_akey:
        double k1, k2
        int seq
    ctypedef struct acd_tier:
        long long penalty
        int n, cap, off
        acd_akey* items
    ctypedef struct acd_ckey:
        long long negprio
        double t
        long long seq
        int slot
    ctypedef struct acd_clist:
        int n, cap
        acd_ckey* items
    ctypedef struct acd_timer:
        double due
        long long seq
        int kind, ref
        long long gen
    ctypedef struct acd_heap:
        int n, cap
        acd_timer* items
    int acd_grow(void** items, int* cap, int need, size_t size) nogil
    void acd_prefetch(const void* p) nogil
    int acd_aupper(const acd_tier* t, const acd_akey* k) nogil
    int acd_tier_insert(acd_tier* t, acd_akey k) nogil
    void acd_tier_remove(acd_tier* t, acd_akey k) nogil
    void acd_tier_free(acd_tier* t) nogil
    int acd_clist_insert(acd_clist* l, acd_ckey k) nogil
    void acd_clist_remove(acd_clist* l, acd_ckey k) nogil
    int acd_heap_push(acd_heap* h, acd_timer x) nogil
    acd_timer acd_heap_pop(acd_heap* h) nogil


cdef enum:
    S_LONGEST = 0
    S_RR = 1
    S_FEWEST = 2
    S_OCCUPIED = 3
    S_BEST = 4
    LOGGED_OUT = 0
    READY = 1
    NOT_READY = 2
    BUSY = 3
    ACW = 4
    T_ACW = 0
    T_STEP = 1
    C_MIN_LEVEL = 1
    C_MAX_LEVEL = 10
    C_MAX_PRIORITY = 1000000000

cdef tuple _OPS = ("none", "offer", "agent_ready", "tick")

cdef struct Queue:
    int strategy
    double weight, wrapup
    int ntiers, tcap
    acd_tier* tiers
    int rr_last
    acd_clist calls
    int nsteps
    double* after          # per step
    int novf               # distinct overflow queues, first appearance order
    int* ovf_q
    double* ovf_after
    int* sdef              # per step: relax, ndrop, drop skills..., nadd, (skill, level) pairs
    int sadd               # adds over all steps (how far a requirement can grow)

cdef struct Agent:
    int state
    double idle_since, calls_today, occupancy
    int nq
    int* q                 # queue index per membership (add_agent order)
    int* tier              # tier index per membership (updated when a queue gains a tier)
    acd_akey* keys         # per membership, while ready
    int call               # call slot while busy with a matched call, else -1
    long long gen

cdef struct Call:
    long long seq          # 0: free slot
    int queue
    long long prio
    double t
    int waiting
    int nstages
    int* stages            # nstages offsets, then per stage: count, (skill, level) pairs
    int scap               # ints allocated at stages (kept with the slot for its next call)


cdef inline bint qualifies(const unsigned char* row, const int* req) noexcept nogil:
    cdef int i, n = req[0]
    for i in range(n):
        if row[req[1 + 2 * i]] < req[2 + 2 * i]:
            return False
    return True


cdef class Matcher:
    """The matcher; see ctid.acd.matcher.PyMatcher for the contract of every method."""

    cdef dict _qidx, _aidx, _sidx, _calls
    cdef list _qnames, _anames, _snames, _slot_ids, _reasons, _qsteps
    cdef Queue* _q
    cdef int _nq, _qcap
    cdef Agent* _a
    cdef int _na, _acap
    cdef unsigned char* _lv   # levels, row per agent, stride _scap
    cdef int _scap
    cdef Call* _c
    cdef int _ccap
    cdef int* _fslots         # free call slots (a stack; capacity kept >= _ccap)
    cdef int _nfree, _fcap
    cdef long long _call_seq, _timer_seq
    cdef acd_heap _timers
    cdef int* _buf            # scratch for requirements
    cdef int _bufcap
    cdef int _last_op, _last_considered, _last_queue, _last_step
    cdef long long _last_penalty
    cdef object _last_winner

    def __cinit__(self):
        self._qidx, self._aidx, self._sidx, self._calls = {}, {}, {}, {}
        self._qnames, self._anames, self._snames, self._slot_ids = [], [], [], []
        self._reasons, self._qsteps = [], []
        self._scap = 0
        self._last_queue, self._last_penalty = -1, -1
        self._last_winner = None

    def __dealloc__(self):
        cdef int i, j
        for i in range(self._nq):
            for j in range(self._q[i].ntiers):
                acd_tier_free(&self._q[i].tiers[j])
            free(self._q[i].tiers); free(self._q[i].calls.items)
            free(self._q[i].after); free(self._q[i].ovf_q); free(self._q[i].ovf_after)
            free(self._q[i].sdef)
        for i in range(self._na):
            free(self._a[i].keys)  # q and tier live in the same block
        for i in range(self._ccap):
            free(self._c[i].stages)
        free(self._q); free(self._a); free(self._c); free(self._lv); free(self._timers.items); free(self._buf)
        free(self._fslots)

    # -- configuration ------------------------------------------------------------------
    def add_skill(self, skill):
        if skill not in self._sidx:
            self._new_skill(skill)

    cdef int _new_skill(self, object skill) except -1:
        cdef int n = len(self._snames), cap2, i
        cdef unsigned char* lv
        if n >= self._scap:  # widen every row: rare (skills are few and known early)
            cap2 = max(16, 2 * self._scap)
            lv = <unsigned char*>calloc(<size_t>max(self._acap, 1) * cap2, 1)
            if lv == NULL:
                raise MemoryError()
            for i in range(self._na):
                memcpy(lv + <size_t>i * cap2, self._lv + <size_t>i * self._scap, self._scap)
            free(self._lv)
            self._lv, self._scap = lv, cap2
        self._sidx[skill] = n
        self._snames.append(skill)
        return n

    def add_queue(self, name, strategy="longest_idle", weight=1.0, wrapup=0.0, steps=()):
        code, weight, wrapup, checked = check_queue(name, strategy, weight, wrapup, steps, self._qidx, self._sidx)
        if acd_grow(<void**>&self._q, &self._qcap, self._nq + 1, sizeof(Queue)):
            raise MemoryError()
        cdef Queue* q = &self._q[self._nq]
        memset(q, 0, sizeof(Queue))
        q.strategy, q.weight, q.wrapup, q.rr_last = code, weight, wrapup, -1
        q.nsteps = len(checked)
        q.after = <double*>malloc(sizeof(double) * max(q.nsteps, 1))
        q.ovf_q = <int*>malloc(sizeof(int) * max(q.nsteps, 1))
        q.ovf_after = <double*>malloc(sizeof(double) * max(q.nsteps, 1))
        if q.after == NULL or q.ovf_q == NULL or q.ovf_after == NULL:
            free(q.after); free(q.ovf_q); free(q.ovf_after)
            raise MemoryError()
        cdef int i, j, o, nsdef = 0, relax
        cdef list steps_c = []
        for i, step in enumerate(checked):
            q.after[i] = step.after
            if step.overflow is not None:
                o = self._qidx[step.overflow]
                for j in range(q.novf):
                    if q.ovf_q[j] == o:
                        break
                else:
                    q.ovf_q[q.novf], q.ovf_after[q.novf] = o, step.after
                    q.novf += 1
            relax = min(step.relax, C_MAX_LEVEL)
            steps_c.append(relax)
            steps_c.append(len(step.drop))
            steps_c.extend([self._sidx[s] for s in step.drop])
            steps_c.append(len(step.add))
            for s, lvl in step.add.items():
                steps_c.append(self._sidx[s])
                steps_c.append(<int>lvl)
                q.sadd += 1
        q.sdef = <int*>malloc(sizeof(int) * max(len(steps_c), 1))
        if q.sdef == NULL:
            raise MemoryError()
        for i, o in enumerate(steps_c):
            q.sdef[i] = o
        self._qsteps.append(steps_c)
        self._qidx[name] = self._nq
        self._qnames.append(name)
        self._nq += 1

    def add_agent(self, agent, skills, queues):
        check_agent(agent, skills, queues, self._aidx, self._qidx)
        cdef int n = self._na, i = 0, t, cap2
        for skill in skills:
            if skill not in self._sidx:
                self._new_skill(skill)
        if n >= self._acap:
            cap2 = max(64, 2 * self._acap)
            if acd_grow(<void**>&self._a, &self._acap, cap2, sizeof(Agent)):
                raise MemoryError()
            lv = <unsigned char*>realloc(self._lv, <size_t>self._acap * self._scap + 1)
            if lv == NULL:
                raise MemoryError()
            self._lv = lv
        memset(self._lv + <size_t>n * self._scap, 0, self._scap)
        for skill, level in skills.items():
            self._lv[<size_t>n * self._scap + <int>self._sidx[skill]] = <unsigned char>level
        cdef Agent* a = &self._a[n]
        memset(a, 0, sizeof(Agent))
        a.nq, a.call = len(queues), -1
        # keys, q and tier in one block: a decision that takes the agent reads all three
        a.keys = <acd_akey*>malloc((sizeof(acd_akey) + 2 * sizeof(int)) * max(a.nq, 1))
        if a.keys == NULL:
            raise MemoryError()
        a.q = <int*>(a.keys + max(a.nq, 1))
        a.tier = a.q + max(a.nq, 1)
        self._na += 1  # from here the agent exists (and __dealloc__ frees its arrays)
        for name, penalty in queues.items():
            a.q[i] = self._qidx[name]
            a.tier[i] = self._tier_for(a.q[i], penalty)
            i += 1
        self._aidx[agent] = n
        self._anames.append(agent)
        self._reasons.append(None)

    cdef int _tier_for(self, int qi, long long penalty) except -1:
        """The index of the queue's tier for `penalty`, created (and indexes shifted) if new."""
        cdef Queue* q = &self._q[qi]
        cdef int i = 0, j, k
        while i < q.ntiers and q.tiers[i].penalty < penalty:
            i += 1
        if i < q.ntiers and q.tiers[i].penalty == penalty:
            return i
        if acd_grow(<void**>&q.tiers, &q.tcap, q.ntiers + 1, sizeof(acd_tier)):
            raise MemoryError()
        for j in range(q.ntiers, i, -1):
            q.tiers[j] = q.tiers[j - 1]
        memset(&q.tiers[i], 0, sizeof(acd_tier))
        q.tiers[i].penalty = penalty
        q.ntiers += 1
        for j in range(self._na):  # memberships of this queue at a later tier move up by one
            for k in range(self._a[j].nq):
                if self._a[j].q[k] == qi and self._a[j].tier[k] >= i:
                    self._a[j].tier[k] += 1
        return i

    def set_stats(self, agent, calls_today=None, occupancy=None):
        cdef int ai = self._agent(agent)
        check_stats(calls_today, occupancy)
        cdef Agent* a = &self._a[ai]
        cdef bint ready = a.state == READY
        if ready:
            self._unindex(ai)
        if calls_today is not None:
            a.calls_today = <double>calls_today
        if occupancy is not None:
            a.occupancy = occupancy
        if ready:
            self._index(ai)

    # -- agent state -------------------------------------------------------------------
    def set_state(self, agent, state, double now, reason=None):
        if now != now:
            check_now(now)
        cdef int ai = self._agent(agent)
        if state not in STATES:
            raise MatchError("unknown_state", repr(state))
        cdef int code = STATES.index(state)
        cdef Agent* a = &self._a[ai]
        if code == READY:
            return self.agent_ready(agent, now)
        if code == ACW:
            raise MatchError("bad_transition", "acw starts with call_ended")
        if a.state == BUSY:
            raise MatchError("bad_transition", f"agent {agent!r} is busy: call_ended first")
        if code == BUSY and a.state == LOGGED_OUT:
            raise MatchError("bad_transition", f"agent {agent!r} is logged out")
        self._leave(ai)
        a.state = code
        self._reasons[ai] = reason if code == NOT_READY else None
        return None

    def agent_ready(self, agent, double now):
        if now != now:
            check_now(now)
        cdef int ai = self._agent(agent)
        cdef int st = self._a[ai].state
        if st == READY or st == BUSY:
            raise MatchError("bad_transition", f"agent {agent!r} is {STATES[st]}")
        self._leave(ai)
        return self._make_ready(ai, now)

    def call_ended(self, agent, double now, bint acw=True):
        if now != now:
            check_now(now)
        cdef int ai = self._agent(agent)
        cdef Agent* a = &self._a[ai]
        if a.state != BUSY:
            raise MatchError("bad_transition", f"agent {agent!r} is {STATES[a.state]}, not busy")
        cdef double wrapup = 0.0
        cdef acd_timer tm
        if a.call >= 0:
            wrapup = self._q[self._c[a.call].queue].wrapup
            self._forget(a.call)
            a.call = -1
        a.gen += 1
        if not acw:
            a.state = NOT_READY
            self._reasons[ai] = None
            return None
        if wrapup > 0:
            a.state = ACW
            self._timer_seq += 1
            tm.due, tm.seq, tm.kind, tm.ref, tm.gen = now + wrapup, self._timer_seq, T_ACW, ai, a.gen
            if acd_heap_push(&self._timers, tm):
                raise MemoryError()
            return None
        return self._make_ready(ai, now)

    # -- calls ----------------------------------------------------------------------------
    def offer(self, call, queue, requirements, priority, double now):
        if now != now:
            check_now(now)
        # the call is registered under the slot it will take in one dict probe (a duplicate
        # leaves the dict as it was) and unregistered if a later check refuses the offer
        cdef int slot = self._fslots[self._nfree - 1] if self._nfree else len(self._slot_ids)
        cdef object sobj = slot
        if <object>PyDict_SetDefault(self._calls, call, sobj) is not sobj:
            raise MatchError("duplicate_call", repr(call))
        cdef int got
        try:
            got = self._offer_checks(call, queue, requirements, priority, now)
        except BaseException:
            del self._calls[call]
            raise
        if got != slot:  # never (the slot is foreseen); exact regardless
            slot = got
            self._calls[call] = slot
        cdef Call* c = &self._c[slot]
        cdef Queue* q = &self._q[c.queue]
        self._prep_stages(slot, c.queue)
        if self._stage_at(slot, now) > 0:  # a step at 0 s: in effect from the start
            self._expand(slot)
        won = self._select_agent(slot, now, 1)
        if won is not None:
            return won
        self._expand(slot)
        self._wait(slot)
        cdef acd_timer tm
        cdef int i
        for i in range(q.nsteps):
            if now + q.after[i] > now:
                self._timer_seq += 1
                tm.due, tm.seq, tm.kind, tm.ref, tm.gen = now + q.after[i], self._timer_seq, T_STEP, slot, c.seq
                if acd_heap_push(&self._timers, tm):
                    raise MemoryError()
        return None

    cdef int _offer_checks(self, object call, object queue, object requirements, object priority,
                           double now) except -1:
        """offer's checks (PyMatcher's order), then the call in its slot: returns the slot."""
        qo = self._qidx.get(queue)
        if qo is None:
            raise MatchError("unknown_queue", repr(queue))
        cdef int qi = qo, n = 0, ovf = 0, room = len(requirements), t, ai
        cdef long long prio
        cdef Queue* pq = &self._q[qi]
        if pq.strategy != S_RR:  # the front agent of the first tier is the likely winner: its
            for t in range(pq.ntiers):  # level row and its struct start loading while we check
                if pq.tiers[t].n:
                    ai = pq.tiers[t].items[0].seq
                    acd_prefetch(self._lv + <size_t>ai * self._scap)
                    acd_prefetch(&self._a[ai])
                    break
        if self._bufcap < 2 * room + 1:
            self._reserve(2 * room + 1)
        cdef Py_ssize_t pos = 0
        cdef PyObject* kp
        cdef PyObject* vp
        if type(requirements) is dict:
            while PyDict_Next(requirements, &pos, &kp, &vp):
                if n >= room:
                    raise RuntimeError("dictionary changed size during iteration")
                skill, level = <object>kp, <object>vp
                self._req_item(n, skill, level)
                n += 1
        else:
            for skill, level in requirements.items():
                self._req_item(n, skill, level)
                n += 1
        self._buf[0] = n
        prio = 0
        if type(priority) is int:
            prio = PyLong_AsLongAndOverflow(priority, &ovf)
        if not (type(priority) is int and not ovf and -C_MAX_PRIORITY <= prio <= C_MAX_PRIORITY):
            check_priority(priority)
            prio = priority
        return self._new_call(call, qi, prio, now)

    def remove_call(self, call):
        so = self._calls.get(call)
        if so is None:
            raise MatchError("unknown_call", repr(call))
        cdef int slot = so
        if not self._c[slot].waiting:
            raise MatchError("bad_transition", f"call {call!r} is with an agent: call_ended")
        self._unwait(slot)
        self._forget(slot)

    def tick(self, double now):
        if now != now:
            check_now(now)
        cdef list out = []
        cdef acd_timer tm
        cdef Agent* a
        cdef Call* c
        while self._timers.n and self._timers.items[0].due <= now:
            tm = acd_heap_pop(&self._timers)
            if tm.kind == T_ACW:
                a = &self._a[tm.ref]
                if a.state == ACW and a.gen == tm.gen:
                    got = self._make_ready(tm.ref, tm.due)
                    if got is not None:
                        out.append((got, self._anames[tm.ref]))
            else:
                c = &self._c[tm.ref]
                if c.seq == tm.gen and c.waiting:
                    self._unwait(tm.ref)
                    won = self._select_agent(tm.ref, tm.due, 3)
                    if won is None:
                        self._wait(tm.ref)
                    else:
                        out.append((self._slot_ids[tm.ref], won))
        return out

    # -- introspection ---------------------------------------------------------------------
    def explain(self):
        queue = self._qnames[self._last_queue] if self._last_queue >= 0 else None
        rule = None
        if self._last_op == 2:
            rule = "priority_wait"
        elif self._last_queue >= 0:
            rule = STRATEGIES[self._q[self._last_queue].strategy]
        return {"op": _OPS[self._last_op], "winner": self._last_winner, "considered": self._last_considered,
                "queue": queue, "tier": self._last_penalty if self._last_penalty >= 0 else None,
                "rule": rule, "step": self._last_step}

    def agent_state(self, agent):
        cdef int ai = self._agent(agent)
        cdef int slot = self._a[ai].call
        return STATES[self._a[ai].state], self._reasons[ai], (self._slot_ids[slot] if slot >= 0 else None)

    def ready_agents(self, queue):
        cdef int qi = self._queue(queue), t, i
        cdef Queue* q = &self._q[qi]
        return [(q.tiers[t].penalty, self._anames[q.tiers[t].items[i].seq])
                for t in range(q.ntiers) for i in range(q.tiers[t].n)]

    def waiting_calls(self, queue):
        cdef int qi = self._queue(queue), i
        cdef acd_clist* l = &self._q[qi].calls
        return [self._slot_ids[l.items[i].slot] for i in range(l.n)]

    def requirement(self, call, double now):
        if now != now:
            check_now(now)
        so = self._calls.get(call)
        if so is None:
            raise MatchError("unknown_call", repr(call))
        cdef int slot = so, i
        self._expand(slot)
        cdef const int* req = self._stage(slot, self._stage_at(slot, now))
        return {self._snames[req[1 + 2 * i]]: req[2 + 2 * i] for i in range(req[0])}

    # -- internals --------------------------------------------------------------------
    cdef int _agent(self, object agent) except -1:
        ai = self._aidx.get(agent)
        if ai is None:
            raise MatchError("unknown_agent", repr(agent))
        return ai

    cdef int _queue(self, object queue) except -1:
        qi = self._qidx.get(queue)
        if qi is None:
            raise MatchError("unknown_queue", repr(queue))
        return qi

    cdef inline int _req_item(self, int n, object skill, object level) except -1:
        """Requirement item n into the scratch buffer, checked as PyMatcher does."""
        cdef int ovf = 0
        cdef long lv = 0
        so = self._sidx.get(skill)
        if so is None:
            raise MatchError("unknown_skill", repr(skill))
        if type(level) is int:
            lv = PyLong_AsLongAndOverflow(level, &ovf)
        if not (type(level) is int and not ovf and C_MIN_LEVEL <= lv <= C_MAX_LEVEL):
            check_level(skill, level)  # raises (and accepts int subclasses the same way)
            lv = level
        if self._bufcap < 2 * n + 3:
            self._reserve(2 * n + 3)
        self._buf[1 + 2 * n], self._buf[2 + 2 * n] = <int>so, <int>lv
        return 0

    cdef int _reserve(self, int need) except -1:
        if acd_grow(<void**>&self._buf, &self._bufcap, need, sizeof(int)):
            raise MemoryError()
        return 0


    # -- the decision core: C twins of PyMatcher's internals, same loops (same counts and ties)
    cdef int _new_call(self, object call, int qi, long long prio, double now) except -1:
        cdef int slot, old
        if self._nfree:
            self._nfree -= 1
            slot = self._fslots[self._nfree]
        else:
            slot = len(self._slot_ids)
            old = self._ccap
            if acd_grow(<void**>&self._c, &self._ccap, slot + 1, sizeof(Call)):
                raise MemoryError()
            memset(&self._c[old], 0, sizeof(Call) * (self._ccap - old))
            if acd_grow(<void**>&self._fslots, &self._fcap, self._ccap, sizeof(int)):
                raise MemoryError()
            self._slot_ids.append(None)
        self._call_seq += 1
        cdef Call* c = &self._c[slot]
        c.seq, c.queue, c.prio, c.t, c.waiting, c.nstages = self._call_seq, qi, prio, now, 1, 0
        self._slot_ids[slot] = call  # offer has registered it in _calls under this slot
        return slot

    cdef void _forget(self, int slot):
        del self._calls[self._slot_ids[slot]]
        self._slot_ids[slot] = None
        self._c[slot].seq = 0  # the slot keeps its stages buffer for its next call
        self._fslots[self._nfree] = slot
        self._nfree += 1

    cdef int _prep_stages(self, int slot, int qi) except -1:
        """Room for the call's requirement after 0..nsteps steps; the one in the scratch buffer
        goes in as stage 0. The later stages are filled by `_expand` when first needed (a call
        matched at once by stage 0 never needs them; `requirement()` and a wait do)."""
        cdef Call* c = &self._c[slot]
        cdef int nst = self._q[qi].nsteps + 1, need
        need = nst + nst * (1 + 2 * (self._buf[0] + self._q[qi].sadd))
        cdef int* st = c.stages
        if need > c.scap:
            st = <int*>realloc(c.stages, sizeof(int) * need)
            if st == NULL:
                raise MemoryError()
            c.stages, c.scap = st, need
        c.nstages = 0  # stage 0 only
        st[0] = nst
        memcpy(st + nst, self._buf, sizeof(int) * (1 + 2 * self._buf[0]))
        return 0

    cdef void _expand(self, int slot) noexcept:
        """Stages 1..nsteps from stage 0 and the queue's steps (see `_prep_stages`)."""
        cdef Call* c = &self._c[slot]
        if c.nstages:
            return
        cdef Queue* q = &self._q[c.queue]
        cdef int* st = c.stages
        cdef int nst = st[0], width, k, i, j, m, s, lvl, relax, ndrop, nadd
        width = 1 + 2 * (st[nst] + q.sadd)
        cdef int* prev
        cdef int* cur
        cdef const int* d = q.sdef
        cdef const int* drop
        cdef const int* add
        for k in range(1, nst):
            st[k] = nst + k * width
            prev, cur = st + st[k - 1], st + st[k]
            relax, ndrop = d[0], d[1]
            drop = d + 2
            nadd = d[2 + ndrop]
            add = d + 3 + ndrop
            d = add + 2 * nadd
            m = 0
            for i in range(prev[0]):
                s = prev[1 + 2 * i]
                for j in range(ndrop):
                    if drop[j] == s:
                        break
                else:
                    lvl = prev[2 + 2 * i] - relax
                    cur[1 + 2 * m], cur[2 + 2 * m] = s, (lvl if lvl > C_MIN_LEVEL else C_MIN_LEVEL)
                    m += 1
            for i in range(nadd):
                s, lvl = add[2 * i], add[2 * i + 1]
                for j in range(m):
                    if cur[1 + 2 * j] == s:
                        cur[2 + 2 * j] = lvl
                        break
                else:
                    cur[1 + 2 * m], cur[2 + 2 * m] = s, lvl
                    m += 1
            cur[0] = m
        c.nstages = nst

    cdef inline const int* _stage(self, int slot, int k) noexcept:
        cdef int* st = self._c[slot].stages
        return st + st[k]

    cdef inline int _stage_at(self, int slot, double now) noexcept:
        cdef Call* c = &self._c[slot]
        cdef Queue* q = &self._q[c.queue]
        cdef int n = 0
        while n < q.nsteps and now >= c.t + q.after[n]:
            n += 1
        return n

    cdef object _select_agent(self, int slot, double now, int op):
        cdef Call* c = &self._c[slot]
        cdef int step = self._stage_at(slot, now), considered = 0, j, t, qi, ai, n
        cdef const int* req = self._stage(slot, step)
        cdef Queue* origin = &self._q[c.queue]
        cdef Queue* q
        for j in range(-1, origin.novf):
            if j < 0:
                qi = c.queue
            else:
                if c.t + origin.ovf_after[j] > now:
                    continue
                qi = origin.ovf_q[j]
            q = &self._q[qi]
            for t in range(q.ntiers):
                n = 0
                ai = self._pick(q, &q.tiers[t], req, &n)
                considered += n
                if ai >= 0:
                    self._last_op, self._last_winner, self._last_considered = op, self._anames[ai], considered
                    self._last_queue, self._last_penalty, self._last_step = qi, q.tiers[t].penalty, step
                    if q.strategy == S_RR:
                        q.rr_last = ai
                    self._unindex(ai)
                    self._a[ai].gen += 1
                    self._assign(slot, ai)
                    return self._last_winner
        self._last_op, self._last_winner, self._last_considered = op, None, considered
        self._last_queue, self._last_penalty, self._last_step = -1, -1, step
        return None

    cdef int _pick(self, Queue* q, acd_tier* tier, const int* req, int* n) noexcept:
        cdef int i, j, ai, best = -1, score, best_score = -1, r
        cdef acd_akey probe
        cdef unsigned char* row
        cdef int stride = self._scap
        if q.strategy == S_BEST:
            for i in range(tier.n):
                n[0] += 1
                ai = tier.items[i].seq
                row = self._lv + <size_t>ai * stride
                if qualifies(row, req):
                    score = 0
                    for r in range(req[0]):
                        score += row[req[1 + 2 * r]]
                    if score > best_score:
                        best, best_score = ai, score
            return best
        cdef int start = 0
        if q.strategy == S_RR:
            probe.k1, probe.k2, probe.seq = 0.0, 0.0, q.rr_last
            start = acd_aupper(tier, &probe)
        for j in range(tier.n):
            i = start + j
            if i >= tier.n:
                i -= tier.n
            n[0] += 1
            ai = tier.items[i].seq
            if qualifies(self._lv + <size_t>ai * stride, req):
                return ai
        return -1

    cdef void _assign(self, int slot, int ai):
        self._c[slot].waiting = 0
        cdef Agent* a = &self._a[ai]
        a.state, a.call = BUSY, slot
        a.calls_today += 1  # (its reason is None already: every way into ready clears it)

    cdef object _make_ready(self, int ai, double now):
        cdef Agent* a = &self._a[ai]
        a.state, a.idle_since = READY, now
        self._reasons[ai] = None
        cdef int k, i, qi, slot, best = -1, best_queue = -1, step, best_step = 0, considered = 0
        cdef long long best_penalty = -1, best_prio = 0
        cdef double eff, best_eff = 0.0
        cdef Queue* q
        cdef Call* c
        cdef acd_ckey* e
        cdef const unsigned char* row = self._lv + <size_t>ai * self._scap
        for k in range(a.nq):
            qi = a.q[k]
            q = &self._q[qi]
            for i in range(q.calls.n):
                considered += 1
                e = &q.calls.items[i]
                slot = e.slot
                c = &self._c[slot]
                if c.queue != qi and self._open_from(slot, qi) > now:
                    continue
                step = self._stage_at(slot, now)
                if not qualifies(row, self._stage(slot, step)):
                    continue
                eff = (now - c.t) * q.weight
                if best < 0 or c.prio > best_prio or (c.prio == best_prio and (
                        eff > best_eff or (eff == best_eff and c.seq < self._c[best].seq))):
                    best, best_prio, best_eff, best_step = slot, c.prio, eff, step
                    best_queue, best_penalty = qi, q.tiers[a.tier[k]].penalty
                break
        self._last_op, self._last_considered, self._last_step = 2, considered, best_step
        self._last_queue, self._last_penalty = best_queue, best_penalty
        if best < 0:
            self._last_winner = None
            self._index(ai)
            return None
        self._last_winner = self._slot_ids[best]
        self._unwait(best)
        self._assign(best, ai)
        return self._last_winner

    cdef inline double _open_from(self, int slot, int qi) noexcept:
        cdef Call* c = &self._c[slot]
        cdef Queue* origin = &self._q[c.queue]
        cdef int j
        for j in range(origin.novf):
            if origin.ovf_q[j] == qi:
                return c.t + origin.ovf_after[j]
        return c.t

    cdef int _index(self, int ai) except -1:
        cdef Agent* a = &self._a[ai]
        cdef int k, s
        cdef acd_akey key
        for k in range(a.nq):
            s = self._q[a.q[k]].strategy
            key.seq = ai
            if s == S_RR:
                key.k1, key.k2 = 0.0, 0.0
            elif s == S_FEWEST:
                key.k1, key.k2 = a.calls_today, a.idle_since
            elif s == S_OCCUPIED:
                key.k1, key.k2 = a.occupancy, a.idle_since
            else:
                key.k1, key.k2 = a.idle_since, 0.0
            if acd_tier_insert(&self._q[a.q[k]].tiers[a.tier[k]], key):
                raise MemoryError()
            a.keys[k] = key
        return 0

    cdef void _unindex(self, int ai):
        cdef Agent* a = &self._a[ai]
        cdef int k
        for k in range(a.nq):
            acd_tier_remove(&self._q[a.q[k]].tiers[a.tier[k]], a.keys[k])

    cdef void _leave(self, int ai):
        if self._a[ai].state == READY:
            self._unindex(ai)
        self._a[ai].gen += 1

    cdef int _wait(self, int slot) except -1:
        cdef Call* c = &self._c[slot]
        cdef Queue* origin = &self._q[c.queue]
        cdef acd_ckey key
        cdef int j
        key.negprio, key.t, key.seq, key.slot = -c.prio, c.t, c.seq, slot
        if acd_clist_insert(&origin.calls, key):
            raise MemoryError()
        for j in range(origin.novf):
            if acd_clist_insert(&self._q[origin.ovf_q[j]].calls, key):
                raise MemoryError()
        return 0

    cdef void _unwait(self, int slot):
        cdef Call* c = &self._c[slot]
        cdef Queue* origin = &self._q[c.queue]
        cdef acd_ckey key
        cdef int j
        key.negprio, key.t, key.seq, key.slot = -c.prio, c.t, c.seq, slot
        acd_clist_remove(&origin.calls, key)
        for j in range(origin.novf):
            acd_clist_remove(&self._q[origin.ovf_q[j]].calls, key)
