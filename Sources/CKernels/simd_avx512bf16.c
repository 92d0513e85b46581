// The AVX512_BF16 micro-kernel: an 8 × 48 tile of C in 24 zmm accumulators of 16 f32 lanes.
// Each step over a bf16 pair of K loads three 32-bf16 vectors of packed B and, per row,
// broadcasts one u32 of packed A (two bf16) into `vdpbf16ps`: lane j gains
// a[2q]·b[2q][j] + a[2q+1]·b[2q+1][j]. 24 independent accumulators hide the instruction's
// latency (Zen 4: about 6 cycles, one 512-bit issue per cycle, double-pumped).
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))), apply_to = function)

#if LK_BF16_MR != 8 || LK_BF16_NR != 48
#error "simd_avx512bf16.c is written for an 8 × 48 tile"
#endif

void lk_bf16_kernel_avx512bf16(size_t kp, const uint32_t *a, const uint32_t *b, float *c, size_t ldc, float beta) {
    __m512 acc[8][3];  // [MR][NR / 16]
    for (int r = 0; r < 8; r++)
        for (int v = 0; v < 3; v++) acc[r][v] = _mm512_setzero_ps();
    for (size_t q = 0; q < kp; q++, a += 8, b += 48) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
        const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + 16);
        const __m512bh b2 = (__m512bh)_mm512_loadu_si512(b + 32);
        for (int r = 0; r < 8; r++) {
            const __m512bh ar = (__m512bh)_mm512_set1_epi32((int)a[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], ar, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], ar, b1);
            acc[r][2] = _mm512_dpbf16_ps(acc[r][2], ar, b2);
        }
    }
    if (beta == 0) {
        for (int r = 0; r < 8; r++)
            for (int v = 0; v < 3; v++) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
    } else if (beta == 1) {
        for (int r = 0; r < 8; r++)
            for (int v = 0; v < 3; v++)
                _mm512_storeu_ps(c + r * ldc + 16 * v, _mm512_add_ps(_mm512_loadu_ps(c + r * ldc + 16 * v), acc[r][v]));
    } else {
        const __m512 vb = _mm512_set1_ps(beta);
        for (int r = 0; r < 8; r++)
            for (int v = 0; v < 3; v++)
                _mm512_storeu_ps(c + r * ldc + 16 * v, _mm512_fmadd_ps(vb, _mm512_loadu_ps(c + r * ldc + 16 * v), acc[r][v]));
    }
}

#pragma clang attribute pop
#endif
