// The SIMD kernels for AVX-512F (16 lanes).
#if defined(__x86_64__)
#include <immintrin.h>  // the nibble-table permute (vpermps) of the block kernels
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma,f16c"))), apply_to = function)
#define LK_W 16
#define LK_SUFFIX avx512
#include "simd_body.h"
#include "matmul_blocks_body.h"  // the many-vector block products
#pragma clang attribute pop
#endif

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma,f16c"))), apply_to = function)
/// 32 codes (16 bytes) at a time, each looked up in the 16-entry codebook by a lane permute
/// and the high/low nibble results interleaved back into element order.
void lk_decode_nf4_f32_avx512(const uint8_t *packed, size_t first, size_t n, const float *codebook,
                              const float *scales, float *out) {
    size_t i = 0;
    const size_t head = (32 - first % 32) % 32;  // up to the next multiple of 32: whole bytes, one block
    if (head) {
        i = head < n ? head : n;
        lk_decode_nf4_f32_scalar(packed, first, i, codebook, scales, out);
    }
    const __m512 table = _mm512_loadu_ps(codebook);
    const __m512i even = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i odd = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (; i + 32 <= n; i += 32) {
        const size_t e = first + i;
        const __m512i codes = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(packed + e / 2)));
        const __m512 high = _mm512_permutexvar_ps(_mm512_srli_epi32(codes, 4), table);  // elements 2j
        const __m512 low = _mm512_permutexvar_ps(codes, table);  // 2j + 1 (vpermps reads 4 bits)
        const __m512 s = _mm512_set1_ps(scales[e / 64 - first / 64]);
        _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_permutex2var_ps(high, even, low), s));
        _mm512_storeu_ps(out + i + 16, _mm512_mul_ps(_mm512_permutex2var_ps(high, odd, low), s));
    }
    if (i < n) {
        // The tail's scales start at block (first + i)/64: shift the table to it.
        const size_t e = first + i;
        lk_decode_nf4_f32_scalar(packed, e, n - i, codebook, scales + (e / 64 - first / 64), out + i);
    }
}
#pragma clang attribute pop
#endif
