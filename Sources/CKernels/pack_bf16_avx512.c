// The bf16 GEMM's packing (layouts: CKernels.h) with AVX-512F, word for word the scalar twins
// in gemm_bf16.c. Only AVX-512F instructions, so the ISA level LK_ISA_AVX512 is enough.
//
// f32 → bf16 is lk_bf16_bits done with integer lanes, not `vcvtne2ps2bf16` (AVX512_BF16):
// that instruction flushes subnormal inputs to zero (0x007FFFFF gives 0x0000, not 0x0080), so
// its words would differ from the twin's.
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)

#if LK_BF16_MR % 8 != 0 || LK_BF16_NR % 16 != 0
#error "pack_bf16_avx512.c packs A and B [N, K] in blocks of 8 rows, B [K, N] in 16 columns"
#endif

static size_t pairs(size_t k) { return (k + 1) / 2; }

/// The first n (≤ 16) lanes.
static __mmask16 first_lanes(size_t n) { return n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1); }

/// lk_bf16_bits lane by lane, each result in the HIGH half of its 32-bit lane (the low half is
/// junk): rounding adds 0x7FFF plus the kept part's lowest bit, and a NaN sets the bf16 quiet
/// bit (bit 22 of the f32), as lk_bf16_bits does. Leaving the result high saves a shift where
/// it is the odd element of a pair.
static inline __m512i bf16_high(__m512 x) {
    const __m512i u = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    return _mm512_mask_or_epi32(rounded, nan, u, _mm512_set1_epi32(0x00400000));
}

// ---- A and B [N, K]: K contiguous in a row -----------------------------------------------

/// The 8 words of pairs src[0..16) of one row; floats outside `mask` read as 0 (so an odd K's
/// last pair gets a zero high half, and nothing past the row is touched).
static inline __m256i row_words(const float *src, __mmask16 mask) {
    const __m512i high = bf16_high(_mm512_maskz_loadu_ps(mask, src));
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(high, 16));  // vpmovdw: lane 2q | lane 2q+1 << 16
}

/// Transposes w[r][q] (8 rows of 8 words) into z[i] = words q = 2i (low half) and 2i + 1 (high
/// half) of rows 0..7, in two rounds of two-source permutes: rows 0–3 and 4–7 first, each into
/// q 0–3 and q 4–7 ([q][r] 4 × 4), then the pairs of q.
static inline void transpose_8x8(const __m256i w[8], __m512i z[4]) {
    __m512i y[4];  // y[j] = rows 2j, 2j + 1: element s·8 + q is w[2j + s][q]
    for (int j = 0; j < 4; j++) y[j] = _mm512_inserti64x4(_mm512_castsi256_si512(w[2 * j]), w[2 * j + 1], 1);
    // Element e = q·4 + r of a 4 × 4 block is w[r][q (+ 4)]: element r·8 + q of the pair (y[0], y[1]).
    const __m512i lo = _mm512_set_epi32(27, 19, 11, 3, 26, 18, 10, 2, 25, 17, 9, 1, 24, 16, 8, 0);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(4));
    const __m512i rows03_lo = _mm512_permutex2var_epi32(y[0], lo, y[1]), rows03_hi = _mm512_permutex2var_epi32(y[0], hi, y[1]);
    const __m512i rows47_lo = _mm512_permutex2var_epi32(y[2], lo, y[3]), rows47_hi = _mm512_permutex2var_epi32(y[2], hi, y[3]);
    // Element t·8 + r of z is q = 2i + t, row r: rows 0–3 from the first source, 4–7 the second.
    const __m512i even = _mm512_set_epi32(23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(8));
    z[0] = _mm512_permutex2var_epi32(rows03_lo, even, rows47_lo);
    z[1] = _mm512_permutex2var_epi32(rows03_lo, odd, rows47_lo);
    z[2] = _mm512_permutex2var_epi32(rows03_hi, even, rows47_hi);
    z[3] = _mm512_permutex2var_epi32(rows03_hi, odd, rows47_hi);
}

/// Rows 0..7 of x (the first `live` of them real, the rest zero), pairs [q0, q0 + 8) ∩ [0, KP)
/// → dst[q·R + r]: 8 words contiguous per q, where the scalar twin writes one at a time.
static void pack_block_8x8(const float *x, size_t ld, size_t live, size_t k, size_t q0, uint32_t *dst, size_t R) {
    const __mmask16 mask = first_lanes(k - 2 * q0);
    __m256i w[8];
    for (size_t r = 0; r < 8; r++) w[r] = r < live ? row_words(x + r * ld + 2 * q0, mask) : _mm256_setzero_si256();
    __m512i z[4];
    transpose_8x8(w, z);
    const size_t nq = pairs(k) - q0 < 8 ? pairs(k) - q0 : 8;
    for (size_t t = 0; t < nq; t++) {
        const __m256i half = t & 1 ? _mm512_extracti64x4_epi64(z[t / 2], 1) : _mm512_castsi512_si256(z[t / 2]);
        _mm256_storeu_si256((__m256i *)(dst + (q0 + t) * R), half);
    }
}

/// pack_k_contiguous of gemm_bf16.c: panels of R rows of X[rows, k], dst[panel][q][r].
static void pack_k_contiguous(size_t rows, size_t k, const float *x, size_t ld, size_t R,
                              size_t panel_begin, size_t panel_end, uint32_t *packed) {
    const size_t kp = pairs(k);
    for (size_t p = panel_begin; p < panel_end; p++) {
        for (size_t r0 = 0; r0 < R; r0 += 8) {
            const size_t row = p * R + r0, live = row >= rows ? 0 : (rows - row < 8 ? rows - row : 8);
            uint32_t *dst = packed + p * kp * R + r0;  // columns r0..r0+7 of [KP][R]
            for (size_t q0 = 0; q0 < kp; q0 += 8) pack_block_8x8(x + row * ld, ld, live, k, q0, dst, R);
        }
    }
}

void lk_gemm_bf16_pack_a_avx512(size_t m, size_t k, const float *a, size_t lda,
                                size_t panel_begin, size_t panel_end, uint32_t *packed) {
    pack_k_contiguous(m, k, a, lda, LK_BF16_MR, panel_begin, panel_end, packed);
}

// ---- B [K, N]: a pair is two consecutive rows ----------------------------------------------

/// 16 words: bf16(even[j]) | bf16(odd[j]) << 16, columns outside `mask` 0; odd == NULL is the
/// zero row past an odd K.
static inline __m512i column_words(const float *even, const float *odd, __mmask16 mask) {
    const __m512i lo = _mm512_srli_epi32(bf16_high(_mm512_maskz_loadu_ps(mask, even)), 16);
    if (!odd) return lo;
    const __m512i hi = bf16_high(_mm512_maskz_loadu_ps(mask, odd));
    return _mm512_ternarylogic_epi32(lo, hi, _mm512_set1_epi32((int)0xFFFF0000u), 0xF8);  // lo | (hi & mask)
}

void lk_gemm_bf16_pack_b_avx512(int trans_b, size_t n, size_t k, const float *b, size_t ldb,
                                size_t panel_begin, size_t panel_end, uint32_t *packed) {
    if (trans_b) {  // B [N, K]: the same transposition as A
        pack_k_contiguous(n, k, b, ldb, LK_BF16_NR, panel_begin, panel_end, packed);
        return;
    }
    const size_t kp = pairs(k);
    for (size_t p = panel_begin; p < panel_end; p++) {
        uint32_t *dst = packed + p * kp * LK_BF16_NR;  // [KP][NR]
        const size_t col = p * LK_BF16_NR, cols = n - col < LK_BF16_NR ? n - col : LK_BF16_NR;
        for (size_t q = 0; q < kp; q++, dst += LK_BF16_NR) {
            const float *even = b + 2 * q * ldb + col, *odd = 2 * q + 1 < k ? even + ldb : NULL;
            for (size_t j = 0; j < LK_BF16_NR; j += 16) {
                const __mmask16 mask = j < cols ? first_lanes(cols - j) : 0;
                _mm512_storeu_si512(dst + j, column_words(even + j, odd ? odd + j : NULL, mask));
            }
        }
    }
}

#pragma clang attribute pop
#endif
