// The SIMD kernels, written once with clang vector extensions and compiled once per
// instruction set: simd_avx2.c and simd_avx512.c define LK_W (lanes) and LK_SUFFIX, wrap the
// include in a target region, and the compiler emits AVX2+FMA or AVX-512F code. Each kernel
// runs whole vectors, then hands the tail (< LK_W elements) to its scalar twin, which
// evaluates the same polynomial — so results agree with the twin to an ulp or so.
#include "internal.h"

#define LK_CAT2(a, b) a##_##b
#define LK_CAT(a, b) LK_CAT2(a, b)
#define LK_FN(name) LK_CAT(name, LK_SUFFIX)

typedef float vf __attribute__((ext_vector_type(LK_W)));
typedef int vi __attribute__((ext_vector_type(LK_W)));

static inline vf splat(float x) { vf v = x; return v; }
static inline vf load(const float *p) { vf v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline void store(float *p, vf v) { __builtin_memcpy(p, &v, sizeof v); }
static inline vf vfma(vf a, vf b, vf c) { return __builtin_elementwise_fma(a, b, c); }

static inline float hsum(vf v) {
    float lanes[LK_W];
    store(lanes, v);
    float s = 0.0f;
    for (int l = 0; l < LK_W; l++) s += lanes[l];
    return s;
}

/// The scalar exp of internal.h, lane by lane.
static inline vf vexp(vf x) {
    x = __builtin_elementwise_min(__builtin_elementwise_max(x, splat(LK_EXP_LO)), splat(LK_EXP_HI));
    vf fx = __builtin_elementwise_floor(vfma(x, splat(LK_LOG2E), splat(0.5f)));
    vf r = vfma(fx, splat(-LK_LN2_HI), x);
    r = vfma(fx, splat(-LK_LN2_LO), r);
    vf y = splat(LK_EXP_P0);
    y = vfma(y, r, splat(LK_EXP_P1));
    y = vfma(y, r, splat(LK_EXP_P2));
    y = vfma(y, r, splat(LK_EXP_P3));
    y = vfma(y, r, splat(LK_EXP_P4));
    y = vfma(y, r, splat(LK_EXP_P5));
    y = vfma(y, r * r, r + 1.0f);
    vi bits = (__builtin_convertvector(fx, vi) + 127) << 23;
    return y * (vf)bits;
}

static inline vf vsigmoid(vf x) { return 1.0f / (1.0f + vexp(-x)); }

float LK_FN(lk_max_f32)(const float *x, size_t n) {
    size_t i = 0;
    float m = -INFINITY;
    if (n >= LK_W) {
        vf acc = load(x);
        for (i = LK_W; i + LK_W <= n; i += LK_W) acc = __builtin_elementwise_max(acc, load(x + i));  // maxNum
        float lanes[LK_W];
        store(lanes, acc);
        for (int l = 0; l < LK_W; l++) m = fmaxf(m, lanes[l]);
    }
    return fmaxf(m, lk_max_f32_scalar(x + i, n - i));
}

float LK_FN(lk_dot_f32)(const float *a, const float *b, size_t n) {
    vf acc0 = splat(0.0f), acc1 = splat(0.0f);  // two chains hide the FMA latency
    size_t i = 0;
    for (; i + 2 * LK_W <= n; i += 2 * LK_W) {
        acc0 = vfma(load(a + i), load(b + i), acc0);
        acc1 = vfma(load(a + i + LK_W), load(b + i + LK_W), acc1);
    }
    for (; i + LK_W <= n; i += LK_W) acc0 = vfma(load(a + i), load(b + i), acc0);
    return hsum(acc0 + acc1) + lk_dot_f32_scalar(a + i, b + i, n - i);
}

float LK_FN(lk_exp_shift_sum_f32)(const float *x, float shift, float *out, size_t n) {
    vf acc = splat(0.0f);
    size_t i = 0;
    for (; i + LK_W <= n; i += LK_W) {
        vf e = vexp(load(x + i) - shift);
        store(out + i, e);
        acc += e;
    }
    return hsum(acc) + lk_exp_shift_sum_f32_scalar(x + i, shift, out + i, n - i);
}

void LK_FN(lk_silu_f32)(const float *x, float *out, size_t n) {
    size_t i = 0;
    for (; i + LK_W <= n; i += LK_W) {
        vf v = load(x + i);
        store(out + i, v * vsigmoid(v));
    }
    lk_silu_f32_scalar(x + i, out + i, n - i);
}

void LK_FN(lk_silu_backward_f32)(const float *x, const float *dout, float *dx, size_t n) {
    size_t i = 0;
    for (; i + LK_W <= n; i += LK_W) {
        vf v = load(x + i), s = vsigmoid(v);
        store(dx + i, load(dx + i) + load(dout + i) * s * (1.0f + v * (1.0f - s)));
    }
    lk_silu_backward_f32_scalar(x + i, dout + i, dx + i, n - i);
}

void LK_FN(lk_gelu_tanh_f32)(const float *x, float *out, size_t n) {
    size_t i = 0;
    for (; i + LK_W <= n; i += LK_W) {
        vf v = load(x + i);
        store(out + i, v * vsigmoid(2.0f * LK_GELU_K0 * (v + LK_GELU_K1 * v * v * v)));  // ½(1 + tanh u) = σ(2u)
    }
    lk_gelu_tanh_f32_scalar(x + i, out + i, n - i);
}

void LK_FN(lk_gelu_tanh_backward_f32)(const float *x, const float *dout, float *dx, size_t n) {
    size_t i = 0;
    for (; i + LK_W <= n; i += LK_W) {
        vf v = load(x + i);
        vf s = vsigmoid(2.0f * LK_GELU_K0 * (v + LK_GELU_K1 * v * v * v));
        vf du = 2.0f * LK_GELU_K0 * (1.0f + 3.0f * LK_GELU_K1 * v * v);
        store(dx + i, load(dx + i) + load(dout + i) * (s + v * s * (1.0f - s) * du));
    }
    lk_gelu_tanh_backward_f32_scalar(x + i, dout + i, dx + i, n - i);
}

void LK_FN(lk_swiglu_f32)(const float *gate, const float *up, float *out, size_t n) {
    size_t i = 0;
    for (; i + LK_W <= n; i += LK_W) {
        vf g = load(gate + i);
        store(out + i, g * vsigmoid(g) * load(up + i));
    }
    lk_swiglu_f32_scalar(gate + i, up + i, out + i, n - i);
}

void LK_FN(lk_swiglu_backward_f32)(const float *gate, const float *up, const float *dout,
                                   float *dgate, float *dup, size_t n) {
    size_t i = 0;
    for (; i + LK_W <= n; i += LK_W) {
        vf g = load(gate + i), s = vsigmoid(g), d = load(dout + i);
        if (dgate) store(dgate + i, load(dgate + i) + d * load(up + i) * s * (1.0f + g * (1.0f - s)));
        if (dup) store(dup + i, load(dup + i) + d * g * s);
    }
    lk_swiglu_backward_f32_scalar(gate + i, up + i, dout + i, dgate ? dgate + i : 0, dup ? dup + i : 0, n - i);
}

typedef uint64_t vu64 __attribute__((ext_vector_type(LK_W)));

/// lk_splitmix64_at lane-wise for indices first + i + lane; the top 24 bits as ints.
static inline vi dropout_bits(uint64_t seed, uint64_t first) {
    vu64 index;
    for (int l = 0; l < LK_W; l++) index[l] = first + (uint64_t)l + 1;
    vu64 z = seed + index * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z = z ^ (z >> 31);
    return __builtin_convertvector(z >> 40, vi);
}

void LK_FN(lk_dropout_f32)(uint64_t seed, uint64_t first, const float *x, float *out, size_t n, uint32_t threshold, float scale) {
    size_t i = 0;
    for (; i + LK_W <= n; i += LK_W) {
        vi keep = dropout_bits(seed, first + i) >= (int)threshold;  // lanes all ones where kept
        store(out + i, (vf)((vi)(load(x + i) * scale) & keep));
    }
    lk_dropout_f32_scalar(seed, first + i, x + i, out + i, n - i, threshold, scale);
}

void LK_FN(lk_dropout_backward_f32)(uint64_t seed, uint64_t first, const float *dy, float *dx, size_t n, uint32_t threshold, float scale) {
    size_t i = 0;
    for (; i + LK_W <= n; i += LK_W) {
        vi keep = dropout_bits(seed, first + i) >= (int)threshold;
        store(dx + i, load(dx + i) + (vf)((vi)(load(dy + i) * scale) & keep));
    }
    lk_dropout_backward_f32_scalar(seed, first + i, dy + i, dx + i, n - i, threshold, scale);
}

// ---- Fused dot products over ggml blocks: 32 weights a block, LK_W lanes at a time ---------
typedef unsigned char vu8 __attribute__((ext_vector_type(LK_W)));
typedef signed char vs8 __attribute__((ext_vector_type(LK_W)));

static inline vf bytes_low(const unsigned char *q) { vu8 v; __builtin_memcpy(&v, q, sizeof v); return __builtin_convertvector(v & (unsigned char)0x0F, vf); }
static inline vf bytes_high(const unsigned char *q) { vu8 v; __builtin_memcpy(&v, q, sizeof v); return __builtin_convertvector(v >> 4, vf); }

/// A block's half-precision scale (F16C in these targets).
static inline float block_scale(const unsigned char *p) { _Float16 h; __builtin_memcpy(&h, p, sizeof h); return (float)h; }

// The matrix-vector products over ggml blocks: `rows` consecutive rows of `count` blocks.
// Each row runs two blocks per iteration into two accumulators (the chains interleave). A
// software prefetch 1 KiB ahead measured no faster (the stream is sequential), so there is none.

typedef float vf8 __attribute__((ext_vector_type(8)));
typedef float vf4 __attribute__((ext_vector_type(4)));

/// A pairwise horizontal sum: a short tree instead of `hsum`'s chain of LK_W dependent adds
/// (once per row of only 18–48 blocks here: the tree took ~7% off decoding).
static inline float hsum_tree(vf v) {
#if LK_W == 16
    vf8 h = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
#else
    vf8 h = v;
#endif
    vf4 q = __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
    return (q.x + q.z) + (q.y + q.w);
}

/// Σ x[j] over each of `count` 32-float blocks: the m·Σx term of Q4_1 is the same for every
/// row, so it is summed once per call rather than once per row.
static inline void block_sums(const float *x, size_t count, float *sums) {
    for (size_t k = 0; k < count; k++, x += 32) {
        vf s = load(x);
        for (int j = LK_W; j < 32; j += LK_W) s += load(x + j);
        sums[k] = hsum_tree(s);
    }
}

#if LK_W == 16
/// Σ code·x over one block of 32 nibbles (low nibbles meet x[0..16), high ones x[16..32)),
/// each code c decoded as table[c] by a lane permute (vpermps reads only an index's low 4
/// bits, so the low nibble needs no mask): no integer→float conversions at all.
static inline vf nibble_block(const unsigned char *q, const float *x, vf table) {
    __m512i codes = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)q));
    vf lo = (vf)_mm512_permutexvar_ps(codes, (__m512)table);
    vf hi = (vf)_mm512_permutexvar_ps(_mm512_srli_epi32(codes, 4), (__m512)table);
    return vfma(hi, load(x + 16), lo * load(x));
}
static inline vf nibble_table(float first) {
    vf t = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    return t + first;
}
#else
/// Σ (code + first)·x over one block of 32 nibbles, converting through integers.
static inline vf nibble_block(const unsigned char *q, const float *x, vf first) {
    vf s = splat(0.0f);
    for (int j = 0; j < 16; j += LK_W) {
        s = vfma(bytes_low(q + j) + first, load(x + j), s);
        s = vfma(bytes_high(q + j) + first, load(x + 16 + j), s);
    }
    return s;
}
static inline vf nibble_table(float first) { return splat(first); }
#endif

/// Σ q·x over one Q8_0 block of 32 signed codes.
static inline vf q8_block(const unsigned char *q, const float *x) {
    vf s = splat(0.0f);
    for (int j = 0; j < 32; j += LK_W) {
        vs8 c;
        __builtin_memcpy(&c, q + j, sizeof c);
        s = vfma(__builtin_convertvector(c, vf), load(x + j), s);
    }
    return s;
}

/// Weight bytes prefetched ahead of the block in hand by the one-vector products: a run of
/// rows is one stream, and at this distance decoding measured faster than with the hardware
/// prefetcher alone (as in q8dot_body.h); results are unchanged.
#define LK_PREFETCH_AHEAD 4096

void LK_FN(lk_matvec_q8_0_f32)(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    const unsigned char *b = blocks;
    for (size_t r = 0; r < rows; r++) {
        vf acc0 = splat(0.0f), acc1 = splat(0.0f);
        size_t k = 0;
        for (; k + 2 <= count; k += 2, b += 68) {
            __builtin_prefetch(b + LK_PREFETCH_AHEAD, 0, 3);
            acc0 = vfma(splat(block_scale(b)), q8_block(b + 2, x + 32 * k), acc0);
            acc1 = vfma(splat(block_scale(b + 34)), q8_block(b + 36, x + 32 * k + 32), acc1);
        }
        if (k < count) { acc0 = vfma(splat(block_scale(b)), q8_block(b + 2, x + 32 * k), acc0); b += 34; }
        y[r] = hsum_tree(acc0 + acc1);
    }
}

void LK_FN(lk_matvec_q4_0_f32)(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    const unsigned char *b = blocks;
    const vf table = nibble_table(-8.0f);  // codes 0…15 stand for −8…7
    for (size_t r = 0; r < rows; r++) {
        vf acc0 = splat(0.0f), acc1 = splat(0.0f);
        size_t k = 0;
        for (; k + 2 <= count; k += 2, b += 36) {
            __builtin_prefetch(b + LK_PREFETCH_AHEAD, 0, 3);
            acc0 = vfma(splat(block_scale(b)), nibble_block(b + 2, x + 32 * k, table), acc0);
            acc1 = vfma(splat(block_scale(b + 18)), nibble_block(b + 20, x + 32 * k + 32, table), acc1);
        }
        if (k < count) { acc0 = vfma(splat(block_scale(b)), nibble_block(b + 2, x + 32 * k, table), acc0); b += 18; }
        y[r] = hsum_tree(acc0 + acc1);
    }
}

/// Rows of d·Σq·x + m·Σx per block, with the Σx of a segment of up to 64 blocks summed once
/// for all rows; a longer row adds its segments' partial sums in turn.
void LK_FN(lk_matvec_q4_1_f32)(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    const unsigned char *base = blocks;
    const vf table = nibble_table(0.0f);
    float sums[64];  // Σx per block of the current segment
    if (count == 0) for (size_t r = 0; r < rows; r++) y[r] = 0.0f;  // no segment writes them
    for (size_t k0 = 0; k0 < count; k0 += 64) {
        size_t n = count - k0 < 64 ? count - k0 : 64;
        const float *xs = x + 32 * k0;
        block_sums(xs, n, sums);
        for (size_t r = 0; r < rows; r++) {
            const unsigned char *b = base + (r * count + k0) * 20;
            vf acc0 = splat(0.0f), acc1 = splat(0.0f);
            float m0 = 0.0f, m1 = 0.0f;
            size_t k = 0;
            for (; k + 2 <= n; k += 2, b += 40) {
                __builtin_prefetch(b + LK_PREFETCH_AHEAD, 0, 3);
                acc0 = vfma(splat(block_scale(b)), nibble_block(b + 4, xs + 32 * k, table), acc0);
                acc1 = vfma(splat(block_scale(b + 20)), nibble_block(b + 24, xs + 32 * k + 32, table), acc1);
                m0 += block_scale(b + 2) * sums[k];
                m1 += block_scale(b + 22) * sums[k + 1];
            }
            if (k < n) {
                acc0 = vfma(splat(block_scale(b)), nibble_block(b + 4, xs + 32 * k, table), acc0);
                m0 += block_scale(b + 2) * sums[k];
            }
            float part = hsum_tree(acc0 + acc1) + (m0 + m1);
            y[r] = k0 == 0 ? part : y[r] + part;
        }
    }
}

typedef _Float16 vh __attribute__((ext_vector_type(LK_W)));

float LK_FN(lk_dot_f16_f32)(const void *h, const float *x, size_t n) {
    const unsigned char *p = h;
    vf acc0 = splat(0.0f), acc1 = splat(0.0f);
    size_t i = 0;
    for (; i + 2 * LK_W <= n; i += 2 * LK_W) {
        vh a, b;
        __builtin_memcpy(&a, p + 2 * i, sizeof a);
        __builtin_memcpy(&b, p + 2 * (i + LK_W), sizeof b);
        acc0 = vfma(__builtin_convertvector(a, vf), load(x + i), acc0);
        acc1 = vfma(__builtin_convertvector(b, vf), load(x + i + LK_W), acc1);
    }
    return hsum(acc0 + acc1) + lk_dot_f16_f32_scalar(p + 2 * i, x + i, n - i);
}

// ---- Q5_0, Q5_1 and the K-quants ------------------------------------------------------------
// Codes are rebuilt in 32-bit integer lanes (each byte zero-extended once, then nibble and
// high-bit masks and shifts that x86 has natively for 32-bit lanes, unlike bytes) and converted
// to float; each sub-block's Σcode·x is scaled once by its integer scale, and a super-block's
// sum once by d. The Σx of the minimum terms (Q5_1, Q4_K, Q5_K) is summed per 32 weights once
// per call for a segment of x, then shared by all rows, like Q4_1's.

typedef uint32_t vu32 __attribute__((ext_vector_type(LK_W)));

/// LK_W bytes zero-extended to 32-bit lanes.
static inline vu32 widen(const unsigned char *q) { vu8 v; __builtin_memcpy(&v, q, sizeof v); return __builtin_convertvector(v, vu32); }
static inline vf u32_to_f(vu32 v) { return __builtin_convertvector((vi)v, vf); }

/// Bits j0 … j0 + LK_W − 1 of the 32-bit word qh, each as 0 or 16.
static inline vu32 fifth_bits(uint32_t qh, int j0) {
    vu32 shift, word = qh;
    for (int l = 0; l < LK_W; l++) shift[l] = (uint32_t)(j0 + l);
    return ((word >> shift) & 1u) << 4;
}

/// Σ (code − offset)·x over one 32-weight block of Q5_0/Q5_1 (nibbles q[16], high bits qh).
static inline vf q5_block(const unsigned char *q, uint32_t qh, const float *x, float offset) {
#if LK_W == 16
    // The nibble indexes a 16-entry table by lane permute; the fifth bit is a lane mask that
    // adds 16 where it is set.
    const __m512 table = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 shifted = _mm512_sub_ps(table, _mm512_set1_ps(offset)), sixteen = _mm512_set1_ps(16.0f);
    __m512i codes = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)q));
    __m512 lo = _mm512_permutexvar_ps(codes, shifted);  // vpermps reads 4 bits
    __m512 hi = _mm512_permutexvar_ps(_mm512_srli_epi32(codes, 4), shifted);
    lo = _mm512_mask_add_ps(lo, (__mmask16)(qh & 0xFFFF), lo, sixteen);
    hi = _mm512_mask_add_ps(hi, (__mmask16)(qh >> 16), hi, sixteen);
    return vfma((vf)hi, load(x + 16), (vf)lo * load(x));
#endif
    vf s = splat(0.0f);
    for (int j = 0; j < 16; j += LK_W) {
        vu32 v = widen(q + j);
        s = vfma(u32_to_f((v & 0x0Fu) | fifth_bits(qh, j)) - offset, load(x + j), s);
        s = vfma(u32_to_f((v >> 4) | fifth_bits(qh, j + 16)) - offset, load(x + 16 + j), s);
    }
    return s;
}

void LK_FN(lk_matvec_q5_0_f32)(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    const unsigned char *b = blocks;
    for (size_t r = 0; r < rows; r++) {
        vf acc0 = splat(0.0f), acc1 = splat(0.0f);
        size_t k = 0;
        for (; k + 2 <= count; k += 2, b += 44) {
            acc0 = vfma(splat(block_scale(b)), q5_block(b + 6, lk_load_u32le(b + 2), x + 32 * k, 16.0f), acc0);
            acc1 = vfma(splat(block_scale(b + 22)), q5_block(b + 28, lk_load_u32le(b + 24), x + 32 * k + 32, 16.0f), acc1);
        }
        if (k < count) { acc0 = vfma(splat(block_scale(b)), q5_block(b + 6, lk_load_u32le(b + 2), x + 32 * k, 16.0f), acc0); b += 22; }
        y[r] = hsum_tree(acc0 + acc1);
    }
}

/// Segments of x whose per-32-weight sums fit on the stack: 64 blocks of 32 (Q5_1) or 8
/// super-blocks of 256 (K-quants), 2048 weights either way.
#define LK_SEGMENT_SUMS 64

void LK_FN(lk_matvec_q5_1_f32)(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    const unsigned char *base = blocks;
    float sums[LK_SEGMENT_SUMS];
    if (count == 0) for (size_t r = 0; r < rows; r++) y[r] = 0.0f;
    for (size_t k0 = 0; k0 < count; k0 += LK_SEGMENT_SUMS) {
        const size_t n = count - k0 < LK_SEGMENT_SUMS ? count - k0 : LK_SEGMENT_SUMS;
        const float *xs = x + 32 * k0;
        block_sums(xs, n, sums);
        for (size_t r = 0; r < rows; r++) {
            const unsigned char *b = base + (r * count + k0) * 24;
            vf acc = splat(0.0f);
            float m = 0.0f;
            for (size_t k = 0; k < n; k++, b += 24) {
                acc = vfma(splat(block_scale(b)), q5_block(b + 8, lk_load_u32le(b + 4), xs + 32 * k, 0.0f), acc);
                m += block_scale(b + 2) * sums[k];
            }
            const float part = hsum_tree(acc) + m;
            y[r] = k0 == 0 ? part : y[r] + part;
        }
    }
}

/// Σ lo·x[0..32) and Σ hi·x[32..64) over 32 bytes of Q4_K/Q5_K nibbles, the low nibbles
/// being one sub-block's codes and the high nibbles the next one's; `qh`/`bit` add the fifth
/// bit (Q5_K: bit `bit` of qh[l] for the low code, bit + 1 for the high), or qh is NULL.
static inline void k_nibble_pair(const unsigned char *q, const unsigned char *qh, int bit, const float *x, vf *s1, vf *s2) {
#if LK_W == 16
    // The codes index a 16-entry table by lane permute (no conversions); Q5_K's fifth bit is a
    // lane mask (bit `bit` or bit + 1 of qh[l]) that adds 16.
    const __m512 table = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), sixteen = _mm512_set1_ps(16.0f);
    for (int l = 0; l < 32; l += 16) {
        __m512i codes = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + l)));
        __m512 lo = _mm512_permutexvar_ps(codes, table);  // vpermps reads 4 bits
        __m512 hi = _mm512_permutexvar_ps(_mm512_srli_epi32(codes, 4), table);
        if (qh) {
            __m512i h = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qh + l)));
            lo = _mm512_mask_add_ps(lo, _mm512_test_epi32_mask(h, _mm512_set1_epi32(1 << bit)), lo, sixteen);
            hi = _mm512_mask_add_ps(hi, _mm512_test_epi32_mask(h, _mm512_set1_epi32(2 << bit)), hi, sixteen);
        }
        *s1 = vfma((vf)lo, load(x + l), *s1);
        *s2 = vfma((vf)hi, load(x + 32 + l), *s2);
    }
    return;
#endif
    for (int l = 0; l < 32; l += LK_W) {
        vu32 v = widen(q + l), lo = v & 0x0Fu, hi = v >> 4;
        if (qh) {
            vu32 h = widen(qh + l);
            lo |= ((h >> (uint32_t)bit) & 1u) << 4;
            hi |= ((h >> (uint32_t)(bit + 1)) & 1u) << 4;
        }
        *s1 = vfma(u32_to_f(lo), load(x + l), *s1);
        *s2 = vfma(u32_to_f(hi), load(x + 32 + l), *s2);
    }
}

/// One Q4_K (bits 4) or Q5_K (bits 5) super-block: d·Σ sc_j·Σq·x − dmin·Σ m_j·Σx_j, the vector
/// part added to acc and the minimum part returned. `sums` holds Σx of its 8 sub-blocks.
static inline float k45_superblock(const unsigned char *b, const float *x, const float *sums, int bits, vf *acc) {
    const unsigned char *qh = bits == 5 ? b + 16 : 0, *qs = b + (bits == 4 ? 16 : 48);
    vf part = splat(0.0f);
    float mins = 0.0f;
    for (int c = 0; c < 4; c++) {
        int sc1, m1, sc2, m2;
        lk_k_scale_min(2 * c, b + 4, &sc1, &m1);
        lk_k_scale_min(2 * c + 1, b + 4, &sc2, &m2);
        vf s1 = splat(0.0f), s2 = splat(0.0f);
        k_nibble_pair(qs + 32 * c, qh, 2 * c, x + 64 * c, &s1, &s2);
        part = vfma(splat((float)sc1), s1, part);
        part = vfma(splat((float)sc2), s2, part);
        mins += (float)m1 * sums[2 * c] + (float)m2 * sums[2 * c + 1];
    }
    *acc = vfma(splat(block_scale(b)), part, *acc);
    return block_scale(b + 2) * mins;
}

static inline void matvec_k45(const unsigned char *base, size_t rows, size_t count, const float *x, float *y, int bits) {
    const size_t bytes = bits == 4 ? 144 : 176, segment = LK_SEGMENT_SUMS / 8;
    float sums[LK_SEGMENT_SUMS];
    if (count == 0) for (size_t r = 0; r < rows; r++) y[r] = 0.0f;
    for (size_t k0 = 0; k0 < count; k0 += segment) {
        const size_t n = count - k0 < segment ? count - k0 : segment;
        const float *xs = x + 256 * k0;
        block_sums(xs, 8 * n, sums);
        for (size_t r = 0; r < rows; r++) {
            const unsigned char *b = base + (r * count + k0) * bytes;
            vf acc0 = splat(0.0f), acc1 = splat(0.0f);
            float m0 = 0.0f, m1 = 0.0f;
            size_t k = 0;
            for (; k + 2 <= n; k += 2, b += 2 * bytes) {
                m0 += k45_superblock(b, xs + 256 * k, sums + 8 * k, bits, &acc0);
                m1 += k45_superblock(b + bytes, xs + 256 * k + 256, sums + 8 * k + 8, bits, &acc1);
            }
            if (k < n) m0 += k45_superblock(b, xs + 256 * k, sums + 8 * k, bits, &acc0);
            const float part = hsum_tree(acc0 + acc1) - (m0 + m1);
            y[r] = k0 == 0 ? part : y[r] + part;
        }
    }
}

void LK_FN(lk_matvec_q4_k_f32)(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    matvec_k45(blocks, rows, count, x, y, 4);
}

void LK_FN(lk_matvec_q5_k_f32)(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    matvec_k45(blocks, rows, count, x, y, 5);
}

/// One Q6_K super-block: d·Σ_g scale_g·Σ(q − 32)·x over its 16 groups of 16 weights (a vector
/// of LK_W ≤ 16 lanes never straddles two groups).
static inline void q6_superblock(const unsigned char *b, const float *x, vf *acc) {
    const signed char *sc = (const signed char *)(b + 192);
    vf part = splat(0.0f);
    for (int half = 0; half < 2; half++) {
        const unsigned char *ql = b + 64 * half, *qh = b + 128 + 32 * half;
        const float *xh = x + 128 * half;
        const signed char *sh = sc + 8 * half;
        for (int l = 0; l < 32; l += LK_W) {
            vu32 a = widen(ql + l), c = widen(ql + 32 + l), h = widen(qh + l);
            vf q1 = u32_to_f((a & 0x0Fu) | ((h & 3u) << 4)) - 32.0f;
            vf q2 = u32_to_f((c & 0x0Fu) | ((h & 0x0Cu) << 2)) - 32.0f;
            vf q3 = u32_to_f((a >> 4) | (h & 0x30u)) - 32.0f;
            vf q4 = u32_to_f((c >> 4) | ((h >> 2) & 0x30u)) - 32.0f;
            const int g = l / 16;
            part = vfma(splat((float)sh[g]), q1 * load(xh + l), part);
            part = vfma(splat((float)sh[g + 2]), q2 * load(xh + 32 + l), part);
            part = vfma(splat((float)sh[g + 4]), q3 * load(xh + 64 + l), part);
            part = vfma(splat((float)sh[g + 6]), q4 * load(xh + 96 + l), part);
        }
    }
    *acc = vfma(splat(block_scale(b + 208)), part, *acc);
}

void LK_FN(lk_matvec_q6_k_f32)(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    const unsigned char *b = blocks;
    for (size_t r = 0; r < rows; r++) {
        vf acc0 = splat(0.0f), acc1 = splat(0.0f);
        size_t k = 0;
        for (; k + 2 <= count; k += 2, b += 420) {
            q6_superblock(b, x + 256 * k, &acc0);
            q6_superblock(b + 210, x + 256 * k + 256, &acc1);
        }
        if (k < count) { q6_superblock(b, x + 256 * k, &acc0); b += 210; }
        y[r] = hsum_tree(acc0 + acc1);
    }
}
