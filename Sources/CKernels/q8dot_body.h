// The 8-bit-activation block products with 256-bit integer dots, compiled twice: q8dot_avx2.c
// (vpmaddubsw + vpmaddwd) and q8dot_avx512.c (AVX512-VNNI's vpdpbusd on 256-bit registers);
// the two give the same int32 lanes, so every variant adds the same float terms in the order
// of the scalar twins (q8dot_scalar.c) and returns their bits. The file defines LK_Q8_SUFFIX,
// and LK_Q8_VNNI for the VNNI variant.
#include "q8dot.h"
#include <immintrin.h>

#define LK_Q8_CAT2(a, b) a##_##b
#define LK_Q8_CAT(a, b) LK_Q8_CAT2(a, b)
#define LK_Q8_FN(name) LK_Q8_CAT(name, LK_Q8_SUFFIX)

/// Vectors that meet each decoded block before the next: 2 accumulators each stay in registers.
#define LK_Q8_TILE 4

/// How far ahead of the block in hand the weights are prefetched: a row's blocks are one run,
/// and at this distance both cores streaming rows measured 10–30% more bytes per second than
/// the hardware prefetcher alone (a C loop over 123 MB of Q5_0 rows, noisy; no effect on results).
#define LK_Q8_PREFETCH 4096

/// Lane l (0..7) = Σ over bytes 4l … 4l+3 of u·s, u unsigned and s signed.
static inline __m256i dot_u8s8(__m256i u, __m256i s) {
#ifdef LK_Q8_VNNI
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
    // u ≤ 63 and |s| ≤ 127 here, so vpmaddubsw's pairs never saturate 16 bits.
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/// start + the same (start: the lanes' offsets, lk_q8_view.o).
static inline __m256i dot_u8s8_from(__m256i start, __m256i u, const int8_t *q) {
    const __m256i s = _mm256_loadu_si256((const __m256i *)q);
#ifdef LK_Q8_VNNI
    return _mm256_dpbusd_epi32(start, u, s);
#else
    return _mm256_add_epi32(start, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

static inline __m256i offsets(const int32_t *o) { return _mm256_loadu_si256((const __m256i *)o); }

static inline __m256 add_lanes(float scale, __m256i p, __m256 acc) {
    return _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(p), acc);
}

/// lk_q8_hsum8's order: (l, l+4), then (0,2) + (1,3).
static inline float hsum8(__m256 v) {
    const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 g = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(g, _mm_movehdup_ps(g)));
}

static inline float half_at(const unsigned char *p) {
    uint16_t h;
    __builtin_memcpy(&h, p, 2);
    return _cvtsh_ss(h);  // exact, subnormals included, like lk_half_to_float
}

void LK_Q8_FN(lk_quantize_q8)(const float *x, size_t n, void *out) {
    int8_t *q = out;
    float *d = (float *)((unsigned char *)out + n);
    int32_t *s = (int32_t *)((unsigned char *)out + n + 4 * (n / 32));
    int32_t *o = (int32_t *)((unsigned char *)out + n + 8 * (n / 32));
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        const __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8), v2 = _mm256_loadu_ps(xb + 16),
                     v3 = _mm256_loadu_ps(xb + 24);
        const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                       _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float db = _mm_cvtss_f32(m4) / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
        const __m256 vid = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vid)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vid));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vid)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vid));
        const __m256i t = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i t4 = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
        t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, 0x4E));
        t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, 0xB1));
        i0 = _mm256_packs_epi32(i0, i1);  // |codes| ≤ 127: nothing saturates
        i2 = _mm256_packs_epi32(i2, i3);
        const __m256i codes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(i0, i2), order);
        _mm256_storeu_si256((__m256i *)(q + 32 * b), codes);
        const __m256i lanes = dot_u8s8(_mm256_set1_epi8(1), codes);
        _mm256_storeu_si256((__m256i *)(o + 8 * b), _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(lanes, 4)));
        d[b] = db;
        s[b] = _mm_cvtsi128_si32(t4);
    }
}

/// A Q5_0 block's 32 codes (0..31, the weight being code − 16) in value order.
static inline __m256i q5_0_codes(const unsigned char *b) {
    const __m128i qs = _mm_loadu_si128((const __m128i *)(b + 6));
    const __m256i nibbles = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(qs, 4), qs), _mm256_set1_epi8(15));
    const uint32_t qh = lk_load_u32le(b + 2);
#ifdef LK_Q8_VNNI
    return _mm256_mask_add_epi8(nibbles, _cvtu32_mask32(qh), nibbles, _mm256_set1_epi8(16));  // nibble + 16 = nibble | 16
#else
    // Byte i takes qh's byte i/8 and keeps bit i%8.
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh),
                                               _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i high = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(16));
    return _mm256_or_si256(nibbles, high);
#endif
}

/// out[v] = one row of `count` Q5_0 blocks · vector v, for nv ≤ LK_Q8_TILE vectors.
static inline __attribute__((always_inline)) void q5_0_row(const unsigned char *b, size_t count, const lk_q8_view *x,
                                                           int nv, float *out) {
    __m256 acc[LK_Q8_TILE][2];
    for (int v = 0; v < nv; v++) acc[v][0] = acc[v][1] = _mm256_setzero_ps();
    size_t k = 0;
    // Two blocks a step, block k into accumulator k % 2 (a runtime index would keep them in memory).
    for (; k + 2 <= count; k += 2, b += 44) {
        _mm_prefetch((const char *)b + LK_Q8_PREFETCH, _MM_HINT_T0);
        const __m256i c0 = q5_0_codes(b), c1 = q5_0_codes(b + 22);
        const float d0 = half_at(b), d1 = half_at(b + 22);
        for (int v = 0; v < nv; v++) {
            const __m256i p0 = dot_u8s8_from(offsets(x[v].o + 8 * k), c0, x[v].q + 32 * k);
            const __m256i p1 = dot_u8s8_from(offsets(x[v].o + 8 * k + 8), c1, x[v].q + 32 * k + 32);
            acc[v][0] = add_lanes(d0 * x[v].d[k], p0, acc[v][0]);
            acc[v][1] = add_lanes(d1 * x[v].d[k + 1], p1, acc[v][1]);
        }
    }
    if (k < count) {
        const __m256i c = q5_0_codes(b);
        const float dw = half_at(b);
        for (int v = 0; v < nv; v++) {
            acc[v][0] = add_lanes(dw * x[v].d[k], dot_u8s8_from(offsets(x[v].o + 8 * k), c, x[v].q + 32 * k), acc[v][0]);
        }
    }
    for (int v = 0; v < nv; v++) out[v] = hsum8(_mm256_add_ps(acc[v][0], acc[v][1]));
}

/// The same for `count` Q4_K super-blocks: codes 0..15 unsigned, the minimum terms apart.
static inline __attribute__((always_inline)) void q4_k_row(const unsigned char *b, size_t count, const lk_q8_view *x,
                                                           int nv, float *out) {
    __m256 acc[LK_Q8_TILE][2], mins[LK_Q8_TILE];
    for (int v = 0; v < nv; v++) acc[v][0] = acc[v][1] = mins[v] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(15);
    for (size_t k = 0; k < count; k++, b += 144) {
        _mm_prefetch((const char *)b + LK_Q8_PREFETCH, _MM_HINT_T0);
        _mm_prefetch((const char *)b + LK_Q8_PREFETCH + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)b + LK_Q8_PREFETCH + 128, _MM_HINT_T0);
        const float d = half_at(b), dmin = half_at(b + 2);
        int sc[8], m[8];
        for (int j = 0; j < 8; j++) lk_k_scale_min(j, b + 4, &sc[j], &m[j]);
        const __m256 dm = _mm256_mul_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_setr_epi32(m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7])));
        for (int c = 0; c < 4; c++) {
            const __m256i raw = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * c));
            const __m256i lo = _mm256_and_si256(raw, low4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
            const size_t g = 8 * k + 2 * (size_t)c;
            for (int v = 0; v < nv; v++) {
                const __m256i p0 = dot_u8s8(lo, _mm256_loadu_si256((const __m256i *)(x[v].q + 32 * g)));
                const __m256i p1 = dot_u8s8(hi, _mm256_loadu_si256((const __m256i *)(x[v].q + 32 * g + 32)));
                acc[v][0] = add_lanes(d * (float)sc[2 * c] * x[v].d[g], p0, acc[v][0]);
                acc[v][1] = add_lanes(d * (float)sc[2 * c + 1] * x[v].d[g + 1], p1, acc[v][1]);
            }
        }
        for (int v = 0; v < nv; v++) {
            const __m256 scale = _mm256_mul_ps(dm, _mm256_loadu_ps(x[v].d + 8 * k));
            const __m256 sums = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(x[v].s + 8 * k)));
            mins[v] = _mm256_fmadd_ps(scale, sums, mins[v]);
        }
    }
    for (int v = 0; v < nv; v++) out[v] = hsum8(_mm256_add_ps(acc[v][0], acc[v][1])) - hsum8(mins[v]);
}

/// The same for `count` Q6_K super-blocks: codes − 32 signed, a scale per 16 weights.
static inline __attribute__((always_inline)) void q6_k_row(const unsigned char *b, size_t count, const lk_q8_view *x,
                                                           int nv, float *out) {
    __m256 acc[LK_Q8_TILE][2];
    for (int v = 0; v < nv; v++) acc[v][0] = acc[v][1] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(15), bits45 = _mm256_set1_epi8(0x30);
    for (size_t k = 0; k < count; k++, b += 210) {
        for (int line = 0; line < 256; line += 64) _mm_prefetch((const char *)b + LK_Q8_PREFETCH + line, _MM_HINT_T0);
        const float d = half_at(b + 208);
        const signed char *sc = (const signed char *)(b + 192);
        for (int half = 0; half < 2; half++) {
            const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(b + 64 * half));
            const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(b + 64 * half + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * half));
            __m256i codes[4];
            codes[0] = _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_and_si256(_mm256_slli_epi16(h, 4), bits45));
            codes[1] = _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_and_si256(_mm256_slli_epi16(h, 2), bits45));
            codes[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_and_si256(h, bits45));
            codes[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                                       _mm256_and_si256(_mm256_srli_epi16(h, 2), bits45));
            for (int t = 0; t < 4; t += 2) {  // blocks t and t + 1 into accumulators 0 and 1
                const signed char *s = sc + 8 * half + 2 * t;
                const __m256i scales0 = _mm256_set_m128i(_mm_set1_epi32(s[1]), _mm_set1_epi32(s[0]));
                const __m256i scales1 = _mm256_set_m128i(_mm_set1_epi32(s[3]), _mm_set1_epi32(s[2]));
                const size_t g = 8 * k + 4 * (size_t)half + (size_t)t;
                for (int v = 0; v < nv; v++) {
                    // codes − 32: twice the −16 offsets
                    const __m256i o0 = offsets(x[v].o + 8 * g), o1 = offsets(x[v].o + 8 * g + 8);
                    const __m256i p0 = _mm256_mullo_epi32(dot_u8s8_from(_mm256_add_epi32(o0, o0), codes[t], x[v].q + 32 * g), scales0);
                    const __m256i p1 = _mm256_mullo_epi32(dot_u8s8_from(_mm256_add_epi32(o1, o1), codes[t + 1], x[v].q + 32 * g + 32), scales1);
                    acc[v][0] = add_lanes(d * x[v].d[g], p0, acc[v][0]);
                    acc[v][1] = add_lanes(d * x[v].d[g + 1], p1, acc[v][1]);
                }
            }
        }
    }
    for (int v = 0; v < nv; v++) out[v] = hsum8(_mm256_add_ps(acc[v][0], acc[v][1]));
}

// The public shapes: one vector over a run of rows, and nvec vectors (stored back to back,
// lk_q8_bytes(n) each) over a run of rows, LK_Q8_TILE vectors per pass over a row.
#define LK_Q8_KERNELS(TYPE, ELEMENTS, BYTES)                                                         \
    void LK_Q8_FN(lk_matvec_##TYPE##_q8)(const void *blocks, size_t rows, size_t count, const void *xq, float *y) { \
        const lk_q8_view x = lk_q8_at(xq, (ELEMENTS) * count);                                       \
        for (size_t r = 0; r < rows; r++) TYPE##_row((const unsigned char *)blocks + r * count * (BYTES), count, &x, 1, y + r); \
    }                                                                                                \
    void LK_Q8_FN(lk_matmul_##TYPE##_q8)(const void *blocks, size_t rows, size_t count, const void *xq, size_t nvec, \
                                          float *y, size_t ldy) {                                    \
        const size_t n = (ELEMENTS) * count, bytes = lk_q8_bytes(n);                                 \
        for (size_t r = 0; r < rows; r++) {                                                          \
            const unsigned char *row = (const unsigned char *)blocks + r * count * (BYTES);          \
            for (size_t v0 = 0; v0 < nvec; v0 += LK_Q8_TILE) {                                       \
                lk_q8_view x[LK_Q8_TILE];                                                            \
                float out[LK_Q8_TILE];                                                               \
                const int nv = nvec - v0 < LK_Q8_TILE ? (int)(nvec - v0) : LK_Q8_TILE;               \
                for (int v = 0; v < nv; v++) x[v] = lk_q8_at((const unsigned char *)xq + (v0 + (size_t)v) * bytes, n); \
                switch (nv) {                                                                        \
                case 4: TYPE##_row(row, count, x, 4, out); break;                                    \
                case 3: TYPE##_row(row, count, x, 3, out); break;                                    \
                case 2: TYPE##_row(row, count, x, 2, out); break;                                    \
                default: TYPE##_row(row, count, x, 1, out); break;                                   \
                }                                                                                    \
                for (int v = 0; v < nv; v++) y[(v0 + (size_t)v) * ldy + r] = out[v];                 \
            }                                                                                        \
        }                                                                                            \
    }

LK_Q8_KERNELS(q5_0, 32, 22)
LK_Q8_KERNELS(q4_k, 256, 144)
LK_Q8_KERNELS(q6_k, 256, 210)
