"""One index segment in pure Python: the specification of `ctid._fast.recindex.Segment`.

A segment holds recordings sorted by (start, database id) in column arrays, plus posting
lists (ascending positions) per agent, per queue, per tag and per last-4-digits of either
number. A query finds its position range by binary search on start, then walks whichever is
smallest of that range and the posting lists it may use, checking every other filter on the
columns, newest or oldest first, until it has `need` rows. Both twins give identical results
(tests/test_recordings_index.py checks that with hypothesis); the compiled one is faster.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from typing import Callable

from ctid.recordings.columns import DELETED, SUFFIX_CODES, SUFFIX_DIGITS, TYPECODES, VOICEMAIL, Columns, Plan

_POW10 = [10 ** k for k in range(19)]


def number_matches(mode: int, want: int, want_len: int, value: int, length: int) -> bool:
    """Does the number (value, length) match the filter (mode, want, want_len)? 0 exact, 1 prefix, 2 suffix."""
    if length == 0 or length < want_len:
        return False
    if mode == 0:
        return length == want_len and value == want
    if mode == 1:
        return value // _POW10[length - want_len] == want
    return value % _POW10[want_len] == want


class PySegment:
    """Recordings sorted by (start, id), with posting lists; see the module docstring."""

    def __init__(self, cols: Columns) -> None:
        n = len(cols)
        order = sorted(range(n), key=lambda i: (cols.start[i], cols.rowid[i]))  # type: ignore[attr-defined]
        where = [0] * n
        for pos, i in enumerate(order):
            where[i] = pos
        for name, code in TYPECODES.items():
            if name in ("tag_rows", "tag_codes"):
                continue
            src = getattr(cols, name)
            setattr(self, name, array(code, (src[i] for i in order)))
        self.n = n
        self.agent_post = self._postings(self.agent)  # type: ignore[attr-defined]
        self.queue_post = self._postings(self.queue)  # type: ignore[attr-defined]
        tags: dict[int, list[int]] = {}
        for row, tag in zip(cols.tag_rows, cols.tag_codes):  # type: ignore[attr-defined]
            tags.setdefault(tag, []).append(where[row])
        self.tag_post = {tag: sorted(set(p)) for tag, p in tags.items()}
        self.sfx_post: dict[int, list[int]] = {}
        for pos in range(n):
            codes = {self._sfx(self.caller[pos], self.caller_len[pos]),  # type: ignore[attr-defined]
                     self._sfx(self.called[pos], self.called_len[pos])}  # type: ignore[attr-defined]
            for code in codes:
                if code >= 0:
                    self.sfx_post.setdefault(code, []).append(pos)

    @staticmethod
    def _sfx(value: int, length: int) -> int:
        return value % SUFFIX_CODES if length >= SUFFIX_DIGITS else -1

    @staticmethod
    def _postings(codes: array) -> dict[int, list[int]]:
        post: dict[int, list[int]] = {}
        for pos, code in enumerate(codes):
            if code >= 0:
                post.setdefault(code, []).append(pos)
        return post

    def __len__(self) -> int:
        return self.n

    # -- queries ------------------------------------------------------------------------------

    def _bounds(self, plan: Plan) -> tuple[int, int]:
        keys = self.start  # type: ignore[attr-defined]
        lo, hi = bisect_left(keys, plan.lo), bisect_left(keys, plan.hi)
        if plan.has_cursor:
            if plan.newest:
                hi = min(hi, self._key_bound(plan.cur_start, plan.cur_rowid, upper=False))
            else:
                lo = max(lo, self._key_bound(plan.cur_start, plan.cur_rowid, upper=True))
        return lo, hi

    def _key_bound(self, start: float, rowid: int, upper: bool) -> int:
        """First position whose (start, id) is >= (or, upper, >) the given key."""
        lo, hi = bisect_left(self.start, start), bisect_right(self.start, start)  # type: ignore[attr-defined]
        ids = self.rowid  # type: ignore[attr-defined]
        return (bisect_right if upper else bisect_left)(ids, rowid, lo, hi)

    def _candidates(self, plan: Plan, lo: int, hi: int) -> list[int] | range:
        lists: list[list[int]] = []
        if plan.tag >= 0:
            lists.append(self.tag_post.get(plan.tag, []))
        if len(plan.agents) == 1:
            lists.append(self.agent_post.get(plan.agents[0], []))
        if len(plan.queues) == 1:
            lists.append(self.queue_post.get(plan.queues[0], []))
        for mode, value, length in ((2, plan.sfx_value, plan.sfx_len),
                                    (plan.caller_mode, plan.caller_value, plan.caller_len),
                                    (plan.called_mode, plan.called_value, plan.called_len)):
            if mode == 2 and length >= SUFFIX_DIGITS:
                lists.append(self.sfx_post.get(value % SUFFIX_CODES, []))
        best: list[int] | range = range(lo, hi)
        for post in lists:
            a, b = bisect_left(post, lo), bisect_left(post, hi)
            if b - a < len(best):
                best = post[a:b]
        return best

    def _matcher(self, plan: Plan) -> Callable[[int], bool]:
        def match(i: int) -> bool:
            if self.flags[i] & DELETED:  # type: ignore[attr-defined]
                return False
            if plan.agents and self.agent[i] not in plan.agents:  # type: ignore[attr-defined]
                return False
            if plan.queues and self.queue[i] not in plan.queues:  # type: ignore[attr-defined]
                return False
            if plan.teams and self.team[i] not in plan.teams:  # type: ignore[attr-defined]
                return False
            if plan.directions and self.direction[i] not in plan.directions:  # type: ignore[attr-defined]
                return False
            if plan.dispositions and self.disposition[i] not in plan.dispositions:  # type: ignore[attr-defined]
                return False
            d = self.duration[i]  # type: ignore[attr-defined]
            if d < plan.min_dur or d > plan.max_dur:
                return False
            if plan.voicemail >= 0 and bool(self.flags[i] & VOICEMAIL) != bool(plan.voicemail):  # type: ignore[attr-defined]
                return False
            if plan.qa_filter:
                qa = self.qa[i]  # type: ignore[attr-defined]
                if math.isnan(qa) or qa < plan.min_qa or qa > plan.max_qa:
                    return False
            if plan.caller_mode >= 0 and not number_matches(
                    plan.caller_mode, plan.caller_value, plan.caller_len, self.caller[i], self.caller_len[i]):  # type: ignore[attr-defined]
                return False
            if plan.called_mode >= 0 and not number_matches(
                    plan.called_mode, plan.called_value, plan.called_len, self.called[i], self.called_len[i]):  # type: ignore[attr-defined]
                return False
            if plan.sfx_len and not (
                    number_matches(2, plan.sfx_value, plan.sfx_len, self.caller[i], self.caller_len[i])  # type: ignore[attr-defined]
                    or number_matches(2, plan.sfx_value, plan.sfx_len, self.called[i], self.called_len[i])):  # type: ignore[attr-defined]
                return False
            return True

        return match

    def _walk(self, plan: Plan, newest: bool):
        lo, hi = self._bounds(plan)
        if lo >= hi:
            return
        cands = self._candidates(plan, lo, hi)
        match = self._matcher(plan)
        tag_set = set(self.tag_post.get(plan.tag, ())) if plan.tag >= 0 else None
        for i in (reversed(cands) if newest else cands):
            if (tag_set is None or i in tag_set) and match(i):
                yield i

    def search(self, plan: Plan, need: int) -> tuple[array, array]:
        """Up to `need` matches of `plan` in its order: (starts, ids) as arrays ('d', 'q')."""
        starts, ids = array("d"), array("q")
        if need <= 0:
            return starts, ids
        for i in self._walk(plan, plan.newest):
            starts.append(self.start[i])  # type: ignore[attr-defined]
            ids.append(self.rowid[i])  # type: ignore[attr-defined]
            if len(ids) >= need:
                break
        return starts, ids

    def count(self, plan: Plan) -> int:
        """How many recordings match `plan` (its cursor applies, its order does not matter)."""
        return sum(1 for _ in self._walk(plan, False))

    def count_by_queue(self, plan: Plan, origin: float, width: float, buckets: int) -> dict[tuple[int, int], int]:
        """Matching recordings per (queue code, bucket): bucket k is [origin + k*width, origin + (k+1)*width)."""
        out: dict[tuple[int, int], int] = {}
        for i in self._walk(plan, False):
            k = math.floor((self.start[i] - origin) / width)  # type: ignore[attr-defined]
            if 0 <= k < buckets:
                key = (self.queue[i], k)  # type: ignore[attr-defined]
                out[key] = out.get(key, 0) + 1
        return out

    # -- changes ------------------------------------------------------------------------------

    def delete(self, start: float, rowid: int) -> bool:
        """Mark the recording (start, id) deleted; False if it is not here (or already deleted)."""
        pos = self._key_bound(start, rowid, upper=False)
        if pos >= self.n or self.start[pos] != start or self.rowid[pos] != rowid:  # type: ignore[attr-defined]
            return False
        if self.flags[pos] & DELETED:  # type: ignore[attr-defined]
            return False
        self.flags[pos] |= DELETED  # type: ignore[attr-defined]
        return True

    def live(self) -> int:
        """Recordings not deleted."""
        return sum(1 for f in self.flags if not f & DELETED)  # type: ignore[attr-defined]

    def columns(self) -> Columns:
        """The recordings not deleted, as columns (for a merge into a bigger segment)."""
        out = Columns()
        keep = [i for i in range(self.n) if not self.flags[i] & DELETED]  # type: ignore[attr-defined]
        for name in TYPECODES:
            if name not in ("tag_rows", "tag_codes"):
                getattr(out, name).extend(getattr(self, name)[i] for i in keep)
        new = {old: k for k, old in enumerate(keep)}
        for tag, post in sorted(self.tag_post.items()):
            for pos in post:
                if pos in new:
                    out.tag_rows.append(new[pos])  # type: ignore[attr-defined]
                    out.tag_codes.append(tag)  # type: ignore[attr-defined]
        return out

    @property
    def nbytes(self) -> int:
        """Bytes held by the columns and posting lists (as 4-byte positions)."""
        cols = sum(getattr(self, name).itemsize * self.n for name in TYPECODES if name not in ("tag_rows", "tag_codes"))
        posts = 4 * sum(len(p) for d in (self.agent_post, self.queue_post, self.tag_post, self.sfx_post) for p in d.values())
        return cols + posts
