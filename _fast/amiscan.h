/* Byte scanning helpers for amiframes.pyx (AMI frame parser).
 *
 * Plain C with an SSE2 path where the target has it (every x86-64); other targets use
 * the portable loops, which give the same answers (build with -DAMI_NO_SIMD to test them).
 */
#ifndef CTID_AMISCAN_H
#define CTID_AMISCAN_H

#include <Python.h>
#include <stdint.h>
#include <string.h>

#if !defined(AMI_NO_SIMD) && (defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2))
#include <emmintrin.h>
#define AMI_SSE2 1
#endif

#if defined(_MSC_VER)
#include <intrin.h>
static __inline int ami_ctz(unsigned int m) { unsigned long k; _BitScanForward(&k, m); return (int)k; }
#else
static inline int ami_ctz(unsigned int m) { return __builtin_ctz(m); }
#endif

static inline uint64_t ami_load64(const char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Offset of the first "\r\n\r\n" starting at or after i in b[:n], or -1. */
static inline Py_ssize_t ami_find_end(const char *b, Py_ssize_t i, Py_ssize_t n) {
#ifdef AMI_SSE2
    const __m128i lf = _mm_set1_epi8('\n');
    /* candidates: b[j+1] == '\n' and b[j+3] == '\n'; then check the two '\r' */
    while (i + 19 <= n) {
        __m128i a = _mm_loadu_si128((const __m128i *)(b + i + 1));
        __m128i c = _mm_loadu_si128((const __m128i *)(b + i + 3));
        unsigned int m = (unsigned int)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, lf), _mm_cmpeq_epi8(c, lf)));
        while (m) {
            Py_ssize_t j = i + ami_ctz(m);
            if (b[j] == '\r' && b[j + 2] == '\r')
                return j;
            m &= m - 1;
        }
        i += 16;
    }
#endif
    /* the rest (or all, without SSE2): memchr (vectorised in libc) for each '\n' */
    for (i += 1; i + 2 < n; i++) {
        const char *q = (const char *)memchr(b + i, '\n', (size_t)(n - 2 - i));
        if (!q)
            return -1;
        i = (Py_ssize_t)(q - b);
        if (b[i - 1] == '\r' && b[i + 1] == '\r' && b[i + 2] == '\n')
            return i - 1;
    }
    return -1;
}

/* Offset of the first "\r\n" starting at or after i in b[:n], or -1. */
static inline Py_ssize_t ami_find_crlf(const char *b, Py_ssize_t i, Py_ssize_t n) {
#ifdef AMI_SSE2
    const __m128i lf = _mm_set1_epi8('\n');
    while (i + 17 <= n) {
        __m128i a = _mm_loadu_si128((const __m128i *)(b + i + 1));
        unsigned int m = (unsigned int)_mm_movemask_epi8(_mm_cmpeq_epi8(a, lf));
        while (m) {
            Py_ssize_t j = i + ami_ctz(m);
            if (b[j] == '\r')
                return j;
            m &= m - 1;
        }
        i += 16;
    }
#endif
    for (i += 1; i < n; i++) {
        const char *q = (const char *)memchr(b + i, '\n', (size_t)(n - i));
        if (!q)
            return -1;
        i = (Py_ssize_t)(q - b);
        if (b[i - 1] == '\r')
            return i - 1;
    }
    return -1;
}

/* Offset of the first ": " in b[i:n] (both bytes inside), or -1. */
static inline Py_ssize_t ami_find_colon_sp(const char *b, Py_ssize_t i, Py_ssize_t n) {
    for (; i + 1 < n; i++) {
        if (b[i] == ':' && b[i + 1] == ' ')
            return i;
    }
    return -1;
}

/* Offset of the first ':' in b[i:n], or -1. */
static inline Py_ssize_t ami_find_colon(const char *b, Py_ssize_t i, Py_ssize_t n) {
    const char *q = (i < n) ? (const char *)memchr(b + i, ':', (size_t)(n - i)) : NULL;
    return q ? (Py_ssize_t)(q - b) : -1;
}

/* a == b for n bytes, without a call for short strings. */
static inline int ami_eq(const char *a, const char *b, Py_ssize_t n) {
    while (n >= 8) {
        if (ami_load64(a) != ami_load64(b))
            return 0;
        a += 8; b += 8; n -= 8;
    }
    while (n-- > 0) {
        if (*a++ != *b++)
            return 0;
    }
    return 1;
}

/* Offset of the first occurrence of s[:m] (m >= 1) in b[:n], or -1 (portable memmem).
 * memchr looks for s[k], k = min(2, m-1): for "\r\nVariable: ..." that is the rare 'V'. */
static inline Py_ssize_t ami_find_sub(const char *b, Py_ssize_t n, const char *s, Py_ssize_t m) {
    Py_ssize_t k = m > 2 ? 2 : m - 1;
    Py_ssize_t i = k;  /* b[i] is matched against s[k] */
    while (i + (m - k) <= n) {
        const char *q = (const char *)memchr(b + i, s[k], (size_t)(n - (m - k) + 1 - i));
        if (!q)
            return -1;
        i = (Py_ssize_t)(q - b);
        if (ami_eq(b + i - k, s, m))
            return i - k;
        i++;
    }
    return -1;
}

/* A new dict with room for n items without resizing. */
static inline PyObject *ami_dict(Py_ssize_t n) {
#if PY_VERSION_HEX < 0x030D0000
    return _PyDict_NewPresized(n);
#else
    (void)n;
    return PyDict_New();
#endif
}

/* Slot of a key in the key cache (n >= 1; slots is a power of two). */
static inline unsigned int ami_key_slot(const char *p, Py_ssize_t n, unsigned int slots) {
    uint64_t h;
    if (n >= 8)
        h = ami_load64(p) ^ (ami_load64(p + n - 8) * 0x9E3779B97F4A7C15ull);
    else
        h = ((uint64_t)(unsigned char)p[0] << 16) ^ ((uint64_t)(unsigned char)p[n - 1] << 8) ^
            (uint64_t)(unsigned char)p[n >> 1];
    h ^= (uint64_t)n * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return (unsigned int)h & (slots - 1);
}

/* str from UTF-8 bytes, invalid sequences replaced by U+FFFD (bytes.decode("utf-8", "replace")). */
static inline PyObject *ami_decode(const char *p, Py_ssize_t n) {
    Py_ssize_t i = 0;
    uint64_t acc = 0;
    PyObject *s;
    for (; i + 8 <= n; i += 8)
        acc |= ami_load64(p + i);
    for (; i < n; i++)
        acc |= (unsigned char)p[i];
    if (acc & 0x8080808080808080ull)
        return PyUnicode_DecodeUTF8(p, n, "replace");
    if (n <= 1)  /* the interpreter's cached one-character and empty strings */
        return PyUnicode_DecodeUTF8(p, n, "replace");
    s = PyUnicode_New(n, 127);
    if (s)
        memcpy(PyUnicode_1BYTE_DATA(s), p, (size_t)n);
    return s;
}

#endif
