/* Ordered containers of the compiled ACD matcher (matcher.pyx), in plain C.
 *
 * - acd_tier: the ready agents of one (queue, penalty) tier, a sorted array of keys
 *   (k1, k2, agent seq). Sorted arrays rather than trees: a tier holds tens to a few thousand
 *   agents, a decision walks it from the front, and insert/remove is one binary search and one
 *   memmove of a few kilobytes at most: cheaper than pointer chasing at these sizes.
 * - acd_clist: the waiting calls of one queue, sorted by (-priority, queued at, offer seq).
 * - acd_heap: the timers (ACW ends, escalation steps), a binary min-heap on (due, seq).
 *
 * The orders are exactly those of the Python tuples in ctid/acd/matcher.py (which the
 * property test checks); every key ends in a unique sequence number, so no two keys are equal.
 * Functions that allocate return -1 when out of memory, 0 on success.
 */
#ifndef CTID_ACDCORE_H
#define CTID_ACDCORE_H

#include <stdlib.h>
#include <string.h>

typedef struct { double k1, k2; int seq; } acd_akey;
/* items points at the first live key: off slots are free before it (a removal near the front
 * moves the head up instead of the tail down), cap counts from the allocation's start. */
typedef struct { long long penalty; int n, cap, off; acd_akey *items; } acd_tier;
typedef struct { long long negprio; double t; long long seq; int slot; } acd_ckey;
typedef struct { int n, cap; acd_ckey *items; } acd_clist;
typedef struct { double due; long long seq; int kind; int ref; long long gen; } acd_timer;
typedef struct { int n, cap; acd_timer *items; } acd_heap;

/* A hint: the line at p will be read soon (a no-op where the compiler has no builtin). */
static inline void acd_prefetch(const void *p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p);
#else
    (void)p;
#endif
}

static int acd_grow(void **items, int *cap, int need, size_t size) {
    if (need <= *cap) return 0;
    int cap2 = *cap ? *cap : 8;
    while (cap2 < need) cap2 *= 2;
    void *p = realloc(*items, (size_t)cap2 * size);
    if (!p) return -1;
    *items = p;
    *cap = cap2;
    return 0;
}

static inline int acd_aless(const acd_akey *a, const acd_akey *b) {
    if (a->k1 != b->k1) return a->k1 < b->k1;
    if (a->k2 != b->k2) return a->k2 < b->k2;
    return a->seq < b->seq;
}

/* First index whose key is not less than k (bisect_left). */
static inline int acd_alower(const acd_tier *t, const acd_akey *k) {
    int lo = 0, hi = t->n;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (acd_aless(&t->items[mid], k)) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* First index whose key is greater than k (bisect_right). */
static inline int acd_aupper(const acd_tier *t, const acd_akey *k) {
    int lo = 0, hi = t->n;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (acd_aless(k, &t->items[mid])) hi = mid; else lo = mid + 1;
    }
    return lo;
}

static int acd_tier_insert(acd_tier *t, acd_akey k) {
    int i = acd_aupper(t, &k);
    if (t->off > 0 && (i < t->n / 2 || t->off + t->n >= t->cap)) {  /* the head moves down one */
        t->items--;
        t->off--;
        memmove(&t->items[0], &t->items[1], (size_t)i * sizeof(acd_akey));
    } else {
        if (t->off + t->n >= t->cap) {  /* full, and off == 0 here: items is the allocation */
            if (acd_grow((void **)&t->items, &t->cap, t->n + 1, sizeof(acd_akey))) return -1;
        }
        memmove(&t->items[i + 1], &t->items[i], (size_t)(t->n - i) * sizeof(acd_akey));
    }
    t->items[i] = k;
    t->n++;
    return 0;
}

static void acd_tier_remove(acd_tier *t, acd_akey k) {
    int i = acd_alower(t, &k);
    if (i < t->n && t->items[i].seq == k.seq) {
        if (i < t->n / 2) {  /* nearer the front: the head moves up one */
            memmove(&t->items[1], &t->items[0], (size_t)i * sizeof(acd_akey));
            t->items++;
            t->off++;
        } else {
            memmove(&t->items[i], &t->items[i + 1], (size_t)(t->n - i - 1) * sizeof(acd_akey));
        }
        t->n--;
        if (t->n == 0) {
            t->items -= t->off;
            t->off = 0;
        }
    }
}

static void acd_tier_free(acd_tier *t) {
    if (t->items) free(t->items - t->off);
    t->items = NULL;
    t->n = t->cap = t->off = 0;
}

static inline int acd_cless(const acd_ckey *a, const acd_ckey *b) {
    if (a->negprio != b->negprio) return a->negprio < b->negprio;
    if (a->t != b->t) return a->t < b->t;
    return a->seq < b->seq;
}

static inline int acd_clower(const acd_clist *l, const acd_ckey *k) {
    int lo = 0, hi = l->n;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (acd_cless(&l->items[mid], k)) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static int acd_clist_insert(acd_clist *l, acd_ckey k) {
    if (acd_grow((void **)&l->items, &l->cap, l->n + 1, sizeof(acd_ckey))) return -1;
    int i = acd_clower(l, &k);
    memmove(&l->items[i + 1], &l->items[i], (size_t)(l->n - i) * sizeof(acd_ckey));
    l->items[i] = k;
    l->n++;
    return 0;
}

static void acd_clist_remove(acd_clist *l, acd_ckey k) {
    int i = acd_clower(l, &k);
    if (i < l->n && l->items[i].seq == k.seq) {
        memmove(&l->items[i], &l->items[i + 1], (size_t)(l->n - i - 1) * sizeof(acd_ckey));
        l->n--;
    }
}

static inline int acd_tless(const acd_timer *a, const acd_timer *b) {
    if (a->due != b->due) return a->due < b->due;
    return a->seq < b->seq;
}

static int acd_heap_push(acd_heap *h, acd_timer x) {
    if (acd_grow((void **)&h->items, &h->cap, h->n + 1, sizeof(acd_timer))) return -1;
    int i = h->n++;
    while (i > 0) {
        int parent = (i - 1) >> 1;
        if (!acd_tless(&x, &h->items[parent])) break;
        h->items[i] = h->items[parent];
        i = parent;
    }
    h->items[i] = x;
    return 0;
}

static acd_timer acd_heap_pop(acd_heap *h) {
    acd_timer top = h->items[0];
    acd_timer last = h->items[--h->n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && acd_tless(&h->items[c + 1], &h->items[c])) c++;
        if (!acd_tless(&h->items[c], &last)) break;
        h->items[i] = h->items[c];
        i = c;
    }
    if (h->n) h->items[i] = last;
    return top;
}

#endif
