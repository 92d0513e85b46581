// Internal to CKernels: the per-ISA variants the dispatcher chooses between, and the scalar
// exp shared by every scalar twin (the SIMD bodies evaluate the same polynomial lane-wise).
#ifndef LORIKEET_CKERNELS_INTERNAL_H
#define LORIKEET_CKERNELS_INTERNAL_H

#include "CKernels.h"
#include <math.h>

#define LK_DECLARE_VARIANTS(SUFFIX)                                                               \
    float lk_max_f32_##SUFFIX(const float *x, size_t n);                                          \
    float lk_dot_f32_##SUFFIX(const float *a, const float *b, size_t n);                          \
    float lk_exp_shift_sum_f32_##SUFFIX(const float *x, float shift, float *out, size_t n);       \
    void lk_silu_f32_##SUFFIX(const float *x, float *out, size_t n);                              \
    void lk_silu_backward_f32_##SUFFIX(const float *x, const float *dout, float *dx, size_t n);   \
    void lk_gelu_tanh_f32_##SUFFIX(const float *x, float *out, size_t n);                         \
    void lk_gelu_tanh_backward_f32_##SUFFIX(const float *x, const float *dout, float *dx, size_t n); \
    void lk_swiglu_f32_##SUFFIX(const float *gate, const float *up, float *out, size_t n);        \
    void lk_swiglu_backward_f32_##SUFFIX(const float *gate, const float *up, const float *dout,   \
                                         float *dgate, float *dup, size_t n);                  \
    void lk_matvec_q8_0_f32_##SUFFIX(const void *blocks, size_t rows, size_t count, const float *x, float *y); \
    void lk_matvec_q4_0_f32_##SUFFIX(const void *blocks, size_t rows, size_t count, const float *x, float *y); \
    void lk_matvec_q4_1_f32_##SUFFIX(const void *blocks, size_t rows, size_t count, const float *x, float *y); \
    float lk_dot_f16_f32_##SUFFIX(const void *h, const float *x, size_t n);                      \
    void lk_matvec_q5_0_f32_##SUFFIX(const void *blocks, size_t rows, size_t count, const float *x, float *y); \
    void lk_matvec_q5_1_f32_##SUFFIX(const void *blocks, size_t rows, size_t count, const float *x, float *y); \
    void lk_matvec_q4_k_f32_##SUFFIX(const void *blocks, size_t rows, size_t count, const float *x, float *y); \
    void lk_matvec_q5_k_f32_##SUFFIX(const void *blocks, size_t rows, size_t count, const float *x, float *y); \
    void lk_matvec_q6_k_f32_##SUFFIX(const void *blocks, size_t rows, size_t count, const float *x, float *y); \
    void lk_dropout_f32_##SUFFIX(uint64_t seed, uint64_t first, const float *x, float *out, size_t n, \
                                 uint32_t threshold, float scale);                               \
    void lk_dropout_backward_f32_##SUFFIX(uint64_t seed, uint64_t first, const float *dy, float *dx, \
                                          size_t n, uint32_t threshold, float scale);

LK_DECLARE_VARIANTS(avx2)
LK_DECLARE_VARIANTS(avx512)

// The many-vector block products (matmul_blocks_body.h), per instruction set.
#define LK_DECLARE_MATMUL(TYPE, SUFFIX)                                                          \
    void lk_matmul_##TYPE##_f32_##SUFFIX(const void *blocks, size_t rows, size_t count, const float *x, \
                                         size_t nvec, size_t ldx, float *y, size_t ldy);
#define LK_DECLARE_MATMUL_VARIANTS(SUFFIX)                                                       \
    LK_DECLARE_MATMUL(q8_0, SUFFIX) LK_DECLARE_MATMUL(q4_0, SUFFIX) LK_DECLARE_MATMUL(q4_1, SUFFIX) \
    LK_DECLARE_MATMUL(q5_0, SUFFIX) LK_DECLARE_MATMUL(q5_1, SUFFIX) LK_DECLARE_MATMUL(q4_k, SUFFIX) \
    LK_DECLARE_MATMUL(q5_k, SUFFIX) LK_DECLARE_MATMUL(q6_k, SUFFIX)
LK_DECLARE_MATMUL_VARIANTS(avx2)
LK_DECLARE_MATMUL_VARIANTS(avx512)

// The 8-bit-activation block products (q8dot_body.h), per instruction set.
#define LK_DECLARE_Q8(SUFFIX)                                                                     \
    void lk_quantize_q8_##SUFFIX(const float *x, size_t n, void *out);                            \
    void lk_matvec_q5_0_q8_##SUFFIX(const void *blocks, size_t rows, size_t count, const void *xq, float *y); \
    void lk_matvec_q4_k_q8_##SUFFIX(const void *blocks, size_t rows, size_t count, const void *xq, float *y); \
    void lk_matvec_q6_k_q8_##SUFFIX(const void *blocks, size_t rows, size_t count, const void *xq, float *y); \
    void lk_matmul_q5_0_q8_##SUFFIX(const void *blocks, size_t rows, size_t count, const void *xq, size_t nvec, float *y, size_t ldy); \
    void lk_matmul_q4_k_q8_##SUFFIX(const void *blocks, size_t rows, size_t count, const void *xq, size_t nvec, float *y, size_t ldy); \
    void lk_matmul_q6_k_q8_##SUFFIX(const void *blocks, size_t rows, size_t count, const void *xq, size_t nvec, float *y, size_t ldy);
LK_DECLARE_Q8(avx2)
LK_DECLARE_Q8(vnni)

// bf16 GEMM micro-kernels: C[MR, NR] tile = (beta == 0 ? 0 : beta·C) + Σ over kp pairs of the
// packed A micro-panel [kp][MR] times the packed B micro-panel [kp][NR] (layouts in CKernels.h).
typedef void (*lk_bf16_kernel)(size_t kp, const uint32_t *a, const uint32_t *b, float *c, size_t ldc, float beta);
void lk_bf16_kernel_generic(size_t kp, const uint32_t *a, const uint32_t *b, float *c, size_t ldc, float beta);
#if defined(__x86_64__)
// The packing with AVX-512F (pack_bf16_avx512.c): the same words as the _scalar twins.
void lk_gemm_bf16_pack_a_avx512(size_t m, size_t k, const float *a, size_t lda,
                                size_t panel_begin, size_t panel_end, uint32_t *packed);
void lk_gemm_bf16_pack_b_avx512(int trans_b, size_t n, size_t k, const float *b, size_t ldb,
                                size_t panel_begin, size_t panel_end, uint32_t *packed);
void lk_bf16_kernel_avx512bf16(size_t kp, const uint32_t *a, const uint32_t *b, float *c, size_t ldc, float beta);
#endif
/// The kernel the dispatcher picks (dispatch.c).
lk_bf16_kernel lk_bf16_kernel_active(void);

#if defined(__x86_64__)
void lk_decode_nf4_f32_avx512(const uint8_t *packed, size_t first, size_t n, const float *codebook,
                              const float *scales, float *out);
#endif

/// SplitMix64's output for the state that `index` steps of its Weyl sequence reach from
/// `seed`: the dropout kernels' counter-based random bits.
static inline uint64_t lk_splitmix64_at(uint64_t seed, uint64_t index) {
    uint64_t z = seed + (index + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/// f32 → bf16 bits, round to nearest even; NaN stays a (quiet) NaN.
static inline uint32_t lk_bf16_bits(float x) {
    uint32_t u;
    __builtin_memcpy(&u, &x, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (u >> 16) | 0x40u;
    return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
}

static inline float lk_bf16_to_float(uint32_t bits) {
    uint32_t u = bits << 16;
    float f;
    __builtin_memcpy(&f, &u, sizeof f);
    return f;
}

// Cephes-style expf: x = n·ln2 + r with ln2 split in two, a degree-5 polynomial in r, and 2^n
// built in the exponent bits. Relative error ≈ 1e-7; arguments are clamped to ±88.376 (results
// underflow to 0 below about −87.3 and overflow to +inf above about 88.37).
/// IEEE half → float, exact (ggml's block scales).
static inline float lk_half_to_float(const unsigned char *p) {
    uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF, bits;
    if (exponent == 0) {
        if (mantissa == 0) bits = sign;
        else {  // subnormal: normalise
            exponent = 127 - 15 + 1;
            while (!(mantissa & 0x400)) { mantissa <<= 1; exponent--; }
            bits = sign | (exponent << 23) | ((mantissa & 0x3FF) << 13);
        }
    } else if (exponent == 31) bits = sign | 0x7F800000u | (mantissa << 13);
    else bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    float f;
    __builtin_memcpy(&f, &bits, sizeof f);
    return f;
}

#define LK_EXP_HI 88.3762626647949f
#define LK_EXP_LO (-88.3762626647949f)
#define LK_LOG2E 1.44269504088896341f
#define LK_LN2_HI 0.693359375f
#define LK_LN2_LO (-2.12194440e-4f)
#define LK_EXP_P0 1.9875691500e-4f
#define LK_EXP_P1 1.3981999507e-3f
#define LK_EXP_P2 8.3334519073e-3f
#define LK_EXP_P3 4.1665795894e-2f
#define LK_EXP_P4 1.6666665459e-1f
#define LK_EXP_P5 5.0000001201e-1f

// GELU (tanh form) constants: √(2/π) and the cubic coefficient.
#define LK_GELU_K0 0.7978845608028654f
#define LK_GELU_K1 0.044715f

// Plain multiply-adds (not fmaf, which is a slow library call on CPUs without FMA — the very
// CPUs that run this scalar path); the SIMD paths fuse them, differing by an ulp or so.
static inline float lk_expf_scalar(float x) {
    x = fminf(fmaxf(x, LK_EXP_LO), LK_EXP_HI);
    float fx = floorf(x * LK_LOG2E + 0.5f);
    float r = x - fx * LK_LN2_HI;
    r = r - fx * LK_LN2_LO;
    float y = LK_EXP_P0;
    y = y * r + LK_EXP_P1;
    y = y * r + LK_EXP_P2;
    y = y * r + LK_EXP_P3;
    y = y * r + LK_EXP_P4;
    y = y * r + LK_EXP_P5;
    y = y * (r * r) + (r + 1.0f);
    union { int i; float f; } scale = { .i = ((int)fx + 127) << 23 };
    return y * scale.f;
}

static inline float lk_sigmoid_scalar(float x) { return 1.0f / (1.0f + lk_expf_scalar(-x)); }

/// A little-endian 32-bit word at any alignment (Q5_0/Q5_1's fifth bits).
static inline uint32_t lk_load_u32le(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/// The 6-bit scale and minimum of sub-block j (0..7) packed in a Q4_K/Q5_K block's 12 bytes:
/// j < 4 in the low 6 bits of bytes j and j + 4; j ≥ 4 in a nibble of byte j + 4 and the top
/// 2 bits of bytes j − 4 and j.
static inline void lk_k_scale_min(int j, const unsigned char *q, int *scale, int *min) {
    if (j < 4) {
        *scale = q[j] & 63;
        *min = q[j + 4] & 63;
    } else {
        *scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

#endif
