// ggml block decoding, the hot loop of every forward pass over a GGUF base: the scalar twins
// (dequant_body.h compiled plainly) and the public entry points, which dispatch to the widest
// variant the CPU allows (dequant_avx2.c, dequant_avx512.c).
#pragma clang fp contract(off)
#define LK_DQ(name) name##_scalar
#include "dequant_body.h"
#undef LK_DQ

#if defined(__x86_64__)
#define LK_DQ_DECLARE(name) \
    void name##_avx2(const void *blocks, size_t count, float *out); \
    void name##_avx512(const void *blocks, size_t count, float *out); \
    void name(const void *blocks, size_t count, float *out) { \
        switch (lk_isa_active()) { \
        case LK_ISA_AVX512: name##_avx512(blocks, count, out); return; \
        case LK_ISA_AVX2: name##_avx2(blocks, count, out); return; \
        default: name##_scalar(blocks, count, out); return; \
        } \
    }
#else
#define LK_DQ_DECLARE(name) \
    void name(const void *blocks, size_t count, float *out) { name##_scalar(blocks, count, out); }
#endif
LK_DQ_DECLARE(lk_dequant_q8_0)
LK_DQ_DECLARE(lk_dequant_q4_0)
LK_DQ_DECLARE(lk_dequant_q4_1)
LK_DQ_DECLARE(lk_dequant_q5_0)
LK_DQ_DECLARE(lk_dequant_q5_1)
LK_DQ_DECLARE(lk_dequant_q4_k)
LK_DQ_DECLARE(lk_dequant_q5_k)
LK_DQ_DECLARE(lk_dequant_q6_k)
