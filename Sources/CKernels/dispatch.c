// Run-time CPU-feature dispatch: each public kernel calls the widest variant the CPU (and the
// optional cap set by lk_isa_set_limit) allows.
#include "internal.h"
#include <stdatomic.h>

static _Atomic int detected_level = -1;
static _Atomic int limit_level = LK_ISA_AVX512;

lk_isa lk_isa_detected(void) {
    int level = atomic_load_explicit(&detected_level, memory_order_relaxed);
    if (level < 0) {
        level = LK_ISA_SCALAR;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) level = LK_ISA_AVX2;
#if defined(__x86_64__)
        if (level == LK_ISA_AVX2 && __builtin_cpu_supports("avx512f")) level = LK_ISA_AVX512;
#endif
#endif
        atomic_store_explicit(&detected_level, level, memory_order_relaxed);  // idempotent race
    }
    return (lk_isa)level;
}

lk_isa lk_isa_active(void) {
    int d = lk_isa_detected(), l = atomic_load_explicit(&limit_level, memory_order_relaxed);
    return (lk_isa)(d < l ? d : l);
}

lk_isa lk_isa_set_limit(lk_isa level) {
    int l = level < LK_ISA_SCALAR ? LK_ISA_SCALAR : (level > LK_ISA_AVX512 ? LK_ISA_AVX512 : (int)level);
    atomic_store_explicit(&limit_level, l, memory_order_relaxed);
    return lk_isa_active();
}

const char *lk_isa_name(lk_isa level) {
    switch (level) {
    case LK_ISA_AVX512: return "avx512";
    case LK_ISA_AVX2: return "avx2";
    default: return "scalar";
    }
}

#if defined(__x86_64__)
#define LK_DISPATCH(call_avx512, call_avx2, call_scalar) \
    switch (lk_isa_active()) {                           \
    case LK_ISA_AVX512: return call_avx512;              \
    case LK_ISA_AVX2: return call_avx2;                  \
    default: return call_scalar;                         \
    }
#elif defined(__i386__)
#define LK_DISPATCH(call_avx512, call_avx2, call_scalar) \
    if (lk_isa_active() >= LK_ISA_AVX2) return call_avx2; \
    return call_scalar;
#else
#define LK_DISPATCH(call_avx512, call_avx2, call_scalar) return call_scalar;
#endif

float lk_max_f32(const float *x, size_t n) {
    LK_DISPATCH(lk_max_f32_avx512(x, n), lk_max_f32_avx2(x, n), lk_max_f32_scalar(x, n))
}

float lk_dot_f32(const float *a, const float *b, size_t n) {
    LK_DISPATCH(lk_dot_f32_avx512(a, b, n), lk_dot_f32_avx2(a, b, n), lk_dot_f32_scalar(a, b, n))
}

float lk_exp_shift_sum_f32(const float *x, float shift, float *out, size_t n) {
    LK_DISPATCH(lk_exp_shift_sum_f32_avx512(x, shift, out, n), lk_exp_shift_sum_f32_avx2(x, shift, out, n),
                lk_exp_shift_sum_f32_scalar(x, shift, out, n))
}

void lk_silu_f32(const float *x, float *out, size_t n) {
    LK_DISPATCH(lk_silu_f32_avx512(x, out, n), lk_silu_f32_avx2(x, out, n), lk_silu_f32_scalar(x, out, n))
}

void lk_silu_backward_f32(const float *x, const float *dout, float *dx, size_t n) {
    LK_DISPATCH(lk_silu_backward_f32_avx512(x, dout, dx, n), lk_silu_backward_f32_avx2(x, dout, dx, n),
                lk_silu_backward_f32_scalar(x, dout, dx, n))
}

void lk_gelu_tanh_f32(const float *x, float *out, size_t n) {
    LK_DISPATCH(lk_gelu_tanh_f32_avx512(x, out, n), lk_gelu_tanh_f32_avx2(x, out, n), lk_gelu_tanh_f32_scalar(x, out, n))
}

void lk_gelu_tanh_backward_f32(const float *x, const float *dout, float *dx, size_t n) {
    LK_DISPATCH(lk_gelu_tanh_backward_f32_avx512(x, dout, dx, n), lk_gelu_tanh_backward_f32_avx2(x, dout, dx, n),
                lk_gelu_tanh_backward_f32_scalar(x, dout, dx, n))
}

void lk_decode_nf4_f32(const uint8_t *packed, size_t first, size_t n, const float *codebook,
                       const float *scales, float *out) {
#if defined(__x86_64__)
    if (lk_isa_active() == LK_ISA_AVX512) { lk_decode_nf4_f32_avx512(packed, first, n, codebook, scales, out); return; }
#endif
    lk_decode_nf4_f32_scalar(packed, first, n, codebook, scales, out);
}

void lk_dropout_f32(uint64_t seed, uint64_t first, const float *x, float *out, size_t n, uint32_t threshold, float scale) {
    LK_DISPATCH(lk_dropout_f32_avx512(seed, first, x, out, n, threshold, scale),
                lk_dropout_f32_avx2(seed, first, x, out, n, threshold, scale),
                lk_dropout_f32_scalar(seed, first, x, out, n, threshold, scale))
}

void lk_dropout_backward_f32(uint64_t seed, uint64_t first, const float *dy, float *dx, size_t n, uint32_t threshold, float scale) {
    LK_DISPATCH(lk_dropout_backward_f32_avx512(seed, first, dy, dx, n, threshold, scale),
                lk_dropout_backward_f32_avx2(seed, first, dy, dx, n, threshold, scale),
                lk_dropout_backward_f32_scalar(seed, first, dy, dx, n, threshold, scale))
}

void lk_swiglu_f32(const float *gate, const float *up, float *out, size_t n) {
    LK_DISPATCH(lk_swiglu_f32_avx512(gate, up, out, n), lk_swiglu_f32_avx2(gate, up, out, n),
                lk_swiglu_f32_scalar(gate, up, out, n))
}

void lk_swiglu_backward_f32(const float *gate, const float *up, const float *dout, float *dgate, float *dup, size_t n) {
    LK_DISPATCH(lk_swiglu_backward_f32_avx512(gate, up, dout, dgate, dup, n),
                lk_swiglu_backward_f32_avx2(gate, up, dout, dgate, dup, n),
                lk_swiglu_backward_f32_scalar(gate, up, dout, dgate, dup, n))
}

void lk_matvec_q8_0_f32(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    LK_DISPATCH(lk_matvec_q8_0_f32_avx512(blocks, rows, count, x, y), lk_matvec_q8_0_f32_avx2(blocks, rows, count, x, y),
                lk_matvec_q8_0_f32_scalar(blocks, rows, count, x, y))
}

void lk_matvec_q4_0_f32(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    LK_DISPATCH(lk_matvec_q4_0_f32_avx512(blocks, rows, count, x, y), lk_matvec_q4_0_f32_avx2(blocks, rows, count, x, y),
                lk_matvec_q4_0_f32_scalar(blocks, rows, count, x, y))
}

void lk_matvec_q4_1_f32(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    LK_DISPATCH(lk_matvec_q4_1_f32_avx512(blocks, rows, count, x, y), lk_matvec_q4_1_f32_avx2(blocks, rows, count, x, y),
                lk_matvec_q4_1_f32_scalar(blocks, rows, count, x, y))
}

void lk_matvec_q5_0_f32(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    LK_DISPATCH(lk_matvec_q5_0_f32_avx512(blocks, rows, count, x, y), lk_matvec_q5_0_f32_avx2(blocks, rows, count, x, y),
                lk_matvec_q5_0_f32_scalar(blocks, rows, count, x, y))
}

void lk_matvec_q5_1_f32(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    LK_DISPATCH(lk_matvec_q5_1_f32_avx512(blocks, rows, count, x, y), lk_matvec_q5_1_f32_avx2(blocks, rows, count, x, y),
                lk_matvec_q5_1_f32_scalar(blocks, rows, count, x, y))
}

void lk_matvec_q4_k_f32(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    LK_DISPATCH(lk_matvec_q4_k_f32_avx512(blocks, rows, count, x, y), lk_matvec_q4_k_f32_avx2(blocks, rows, count, x, y),
                lk_matvec_q4_k_f32_scalar(blocks, rows, count, x, y))
}

void lk_matvec_q5_k_f32(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    LK_DISPATCH(lk_matvec_q5_k_f32_avx512(blocks, rows, count, x, y), lk_matvec_q5_k_f32_avx2(blocks, rows, count, x, y),
                lk_matvec_q5_k_f32_scalar(blocks, rows, count, x, y))
}

void lk_matvec_q6_k_f32(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    LK_DISPATCH(lk_matvec_q6_k_f32_avx512(blocks, rows, count, x, y), lk_matvec_q6_k_f32_avx2(blocks, rows, count, x, y),
                lk_matvec_q6_k_f32_scalar(blocks, rows, count, x, y))
}

// One row is a matrix of one row: the single-row dots share the matrix kernels.
float lk_dot_q8_0_f32(const void *blocks, const float *x, size_t count) {
    float y;
    lk_matvec_q8_0_f32(blocks, 1, count, x, &y);
    return y;
}

float lk_dot_q4_0_f32(const void *blocks, const float *x, size_t count) {
    float y;
    lk_matvec_q4_0_f32(blocks, 1, count, x, &y);
    return y;
}

float lk_dot_q4_1_f32(const void *blocks, const float *x, size_t count) {
    float y;
    lk_matvec_q4_1_f32(blocks, 1, count, x, &y);
    return y;
}

float lk_dot_f16_f32(const void *h, const float *x, size_t n) {
    LK_DISPATCH(lk_dot_f16_f32_avx512(h, x, n), lk_dot_f16_f32_avx2(h, x, n), lk_dot_f16_f32_scalar(h, x, n))
}

// The bf16 GEMM's packing: AVX-512F or the scalar twin (no AVX2 variant; packing is a small
// part of the product, and CPUs without AVX-512 run the portable micro-kernel anyway).
void lk_gemm_bf16_pack_a(size_t m, size_t k, const float *a, size_t lda,
                         size_t panel_begin, size_t panel_end, uint32_t *packed) {
    LK_DISPATCH(lk_gemm_bf16_pack_a_avx512(m, k, a, lda, panel_begin, panel_end, packed),
                lk_gemm_bf16_pack_a_scalar(m, k, a, lda, panel_begin, panel_end, packed),
                lk_gemm_bf16_pack_a_scalar(m, k, a, lda, panel_begin, panel_end, packed))
}

void lk_gemm_bf16_pack_b(int trans_b, size_t n, size_t k, const float *b, size_t ldb,
                         size_t panel_begin, size_t panel_end, uint32_t *packed) {
    LK_DISPATCH(lk_gemm_bf16_pack_b_avx512(trans_b, n, k, b, ldb, panel_begin, panel_end, packed),
                lk_gemm_bf16_pack_b_scalar(trans_b, n, k, b, ldb, panel_begin, panel_end, packed),
                lk_gemm_bf16_pack_b_scalar(trans_b, n, k, b, ldb, panel_begin, panel_end, packed))
}

/// AVX512_BF16 and the ISA limit at AVX-512: the `vdpbf16ps` micro-kernel; otherwise the
/// portable one (same packing, same products, summed with ordinary multiply-adds).
static _Atomic int has_avx512bf16 = -1;

int lk_gemm_bf16_native(void) {
#if defined(__x86_64__)
    int has = atomic_load_explicit(&has_avx512bf16, memory_order_relaxed);
    if (has < 0) {
        __builtin_cpu_init();
        has = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") ? 1 : 0;
        atomic_store_explicit(&has_avx512bf16, has, memory_order_relaxed);
    }
    return has && lk_isa_active() == LK_ISA_AVX512;
#else
    return 0;
#endif
}

lk_bf16_kernel lk_bf16_kernel_active(void) {
#if defined(__x86_64__)
    if (lk_gemm_bf16_native()) return lk_bf16_kernel_avx512bf16;
#endif
    return lk_bf16_kernel_generic;
}

// The many-vector block products (matmul_blocks_body.h; twins in matmul_blocks.c).
#define LK_MATMUL_DISPATCH(TYPE)                                                                   \
    void lk_matmul_##TYPE##_f32(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, \
                                size_t ldx, float *y, size_t ldy) {                              \
        LK_DISPATCH(lk_matmul_##TYPE##_f32_avx512(blocks, rows, count, x, nvec, ldx, y, ldy),     \
                    lk_matmul_##TYPE##_f32_avx2(blocks, rows, count, x, nvec, ldx, y, ldy),       \
                    lk_matmul_##TYPE##_f32_scalar(blocks, rows, count, x, nvec, ldx, y, ldy))     \
    }
LK_MATMUL_DISPATCH(q8_0)
LK_MATMUL_DISPATCH(q4_0)
LK_MATMUL_DISPATCH(q4_1)
LK_MATMUL_DISPATCH(q5_0)
LK_MATMUL_DISPATCH(q5_1)
LK_MATMUL_DISPATCH(q4_k)
LK_MATMUL_DISPATCH(q5_k)
LK_MATMUL_DISPATCH(q6_k)

// The 8-bit-activation products: the VNNI variant needs AVX512-VNNI, -BW and -VL besides the
// AVX-512 level; all variants give the same bits (q8dot_body.h), so this only picks a speed.
static int lk_q8_level(void) {
    static _Atomic int vnni = -1;
    const lk_isa level = lk_isa_active();
    if (level < LK_ISA_AVX2) return 0;
#if defined(__x86_64__)
    int v = atomic_load_explicit(&vnni, memory_order_relaxed);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
        atomic_store_explicit(&vnni, v, memory_order_relaxed);
    }
    return level == LK_ISA_AVX512 && v ? 2 : 1;
#else
    return 0;
#endif
}

#if defined(__x86_64__)
#define LK_Q8_DISPATCH(NAME, ARGS)                       \
    switch (lk_q8_level()) {                             \
    case 2: NAME##_vnni ARGS; return;                    \
    case 1: NAME##_avx2 ARGS; return;                    \
    default: NAME##_scalar ARGS; return;                 \
    }
#else
#define LK_Q8_DISPATCH(NAME, ARGS) NAME##_scalar ARGS;
#endif

void lk_quantize_q8(const float *x, size_t n, void *out) { LK_Q8_DISPATCH(lk_quantize_q8, (x, n, out)) }

#define LK_Q8_PUBLIC(TYPE)                                                                                     \
    void lk_matvec_##TYPE##_q8(const void *blocks, size_t rows, size_t count, const void *xq, float *y) {       \
        LK_Q8_DISPATCH(lk_matvec_##TYPE##_q8, (blocks, rows, count, xq, y))                                    \
    }                                                                                                          \
    void lk_matmul_##TYPE##_q8(const void *blocks, size_t rows, size_t count, const void *xq, size_t nvec, float *y, size_t ldy) { \
        LK_Q8_DISPATCH(lk_matmul_##TYPE##_q8, (blocks, rows, count, xq, nvec, y, ldy))                         \
    }
LK_Q8_PUBLIC(q5_0)
LK_Q8_PUBLIC(q4_k)
LK_Q8_PUBLIC(q6_k)
