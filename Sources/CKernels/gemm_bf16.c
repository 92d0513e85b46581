// bf16 GEMM with f32 accumulation: the scalar twins of the packing into the pair-interleaved
// layout `vdpbf16ps` reads, the cache-blocked loops around a register-blocked micro-kernel,
// the portable micro-kernel, and the naive twin. Layouts and contracts: CKernels.h. The
// AVX512_BF16 micro-kernel lives in simd_avx512bf16.c, the AVX-512F packing in
// pack_bf16_avx512.c, the packing's dispatch in dispatch.c.
//
// Dimension letters: M rows of A and C, N columns of op(B) and C, K the reduction, KP = ⌈K/2⌉
// bf16 pairs, MR × NR the register tile.
#include "internal.h"
#include <stdlib.h>
#include <string.h>

#define MR LK_BF16_MR
#define NR LK_BF16_NR

// Cache blocking: KC pairs of K per pass, so that a packed A micro-panel (KC·MR·4 = 6 KiB)
// stays in L1 while NC_PANELS packed B micro-panels (NC_PANELS·KC·NR·4 = 288 KiB) stream
// from L2 under it; C tiles are revisited once per KC block.
#define KC 192
#define NC_PANELS 8

float lk_bf16_round(float x) { return lk_bf16_to_float(lk_bf16_bits(x)); }

static size_t pairs(size_t k) { return (k + 1) / 2; }

size_t lk_gemm_bf16_packed_a_words(size_t m, size_t k) { return (m + MR - 1) / MR * MR * pairs(k); }
size_t lk_gemm_bf16_packed_b_words(size_t n, size_t k) { return (n + NR - 1) / NR * NR * pairs(k); }

/// Row panels of R rows of X[rows, k] (K contiguous): dst[panel][q][r] = (X[row][2q], X[row][2q+1]).
static void pack_k_contiguous(size_t rows, size_t k, const float *x, size_t ld, size_t R,
                              size_t panel_begin, size_t panel_end, uint32_t *packed) {
    const size_t kp = pairs(k), whole = k / 2;
    for (size_t p = panel_begin; p < panel_end; p++) {
        uint32_t *dst = packed + p * kp * R;  // [KP][R]
        for (size_t r = 0; r < R; r++) {
            const size_t row = p * R + r;
            if (row >= rows) {
                for (size_t q = 0; q < kp; q++) dst[q * R + r] = 0;
                continue;
            }
            const float *src = x + row * ld;  // [K]
            for (size_t q = 0; q < whole; q++)
                dst[q * R + r] = lk_bf16_bits(src[2 * q]) | lk_bf16_bits(src[2 * q + 1]) << 16;
            if (k & 1) dst[whole * R + r] = lk_bf16_bits(src[k - 1]);
        }
    }
}

void lk_gemm_bf16_pack_a_scalar(size_t m, size_t k, const float *a, size_t lda,
                                size_t panel_begin, size_t panel_end, uint32_t *packed) {
    pack_k_contiguous(m, k, a, lda, MR, panel_begin, panel_end, packed);
}

void lk_gemm_bf16_pack_b_scalar(int trans_b, size_t n, size_t k, const float *b, size_t ldb,
                                size_t panel_begin, size_t panel_end, uint32_t *packed) {
    if (trans_b) {  // B [N, K]: the same transposition as A
        pack_k_contiguous(n, k, b, ldb, NR, panel_begin, panel_end, packed);
        return;
    }
    // B [K, N]: a pair interleaves two consecutive rows.
    const size_t kp = pairs(k);
    for (size_t p = panel_begin; p < panel_end; p++) {
        uint32_t *dst = packed + p * kp * NR;  // [KP][NR]
        const size_t col = p * NR, cols = n - col < NR ? n - col : NR;
        for (size_t q = 0; q < kp; q++, dst += NR) {
            const float *r0 = b + 2 * q * ldb + col;
            if (2 * q + 1 < k) {
                const float *r1 = r0 + ldb;
                for (size_t j = 0; j < cols; j++) dst[j] = lk_bf16_bits(r0[j]) | lk_bf16_bits(r1[j]) << 16;
            } else {
                for (size_t j = 0; j < cols; j++) dst[j] = lk_bf16_bits(r0[j]);
            }
            for (size_t j = cols; j < NR; j++) dst[j] = 0;
        }
    }
}

void lk_gemm_bf16_packed(size_t m, size_t n, size_t k, const uint32_t *packed_a, const uint32_t *packed_b,
                         size_t panel_begin, size_t panel_end, float beta, float *c, size_t ldc) {
    if (m == 0 || n == 0 || panel_begin >= panel_end) return;
    const size_t kp = pairs(k), n_panels = (n + NR - 1) / NR;
    if (kp == 0) {  // no products: C = beta·C on these rows
        const size_t row_end = panel_end * MR < m ? panel_end * MR : m;
        for (size_t i = panel_begin * MR; i < row_end; i++)
            for (size_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
        return;
    }
    const lk_bf16_kernel kernel = lk_bf16_kernel_active();
    float edge[MR * NR];  // [MR, NR] a partial tile, computed whole then copied
    for (size_t q0 = 0; q0 < kp; q0 += KC) {
        const size_t kc = kp - q0 < KC ? kp - q0 : KC;
        const float tile_beta = q0 == 0 ? beta : 1.0f;
        for (size_t nc = 0; nc < n_panels; nc += NC_PANELS) {
            const size_t nc_end = nc + NC_PANELS < n_panels ? nc + NC_PANELS : n_panels;
            for (size_t pi = panel_begin; pi < panel_end; pi++) {
                const uint32_t *a = packed_a + (pi * kp + q0) * MR;  // [KC][MR]
                const size_t rows = m - pi * MR < MR ? m - pi * MR : MR;
                for (size_t pj = nc; pj < nc_end; pj++) {
                    const uint32_t *b = packed_b + (pj * kp + q0) * NR;  // [KC][NR]
                    const size_t cols = n - pj * NR < NR ? n - pj * NR : NR;
                    float *tile = c + pi * MR * ldc + pj * NR;
                    if (rows == MR && cols == NR) {
                        kernel(kc, a, b, tile, ldc, tile_beta);
                        continue;
                    }
                    kernel(kc, a, b, edge, NR, 0);
                    for (size_t i = 0; i < rows; i++)
                        for (size_t j = 0; j < cols; j++) {
                            float *t = tile + i * ldc + j;
                            *t = (tile_beta == 0 ? 0 : tile_beta * *t) + edge[i * NR + j];
                        }
                }
            }
        }
    }
}

int lk_gemm_bf16(int trans_b, size_t m, size_t n, size_t k, const float *a, size_t lda,
                 const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    if (m == 0 || n == 0) return 0;
    const size_t a_words = lk_gemm_bf16_packed_a_words(m, k), b_words = lk_gemm_bf16_packed_b_words(n, k);
    uint32_t *pa = NULL, *pb = NULL;
    if (a_words + b_words > 0) {
        pa = aligned_alloc(64, ((a_words + b_words) * sizeof(uint32_t) + 63) / 64 * 64);
        if (!pa) return -1;
        pb = pa + a_words;
    }
    const size_t m_panels = (m + MR - 1) / MR, n_panels = (n + NR - 1) / NR;
    lk_gemm_bf16_pack_a(m, k, a, lda, 0, m_panels, pa);
    lk_gemm_bf16_pack_b(trans_b, n, k, b, ldb, 0, n_panels, pb);
    lk_gemm_bf16_packed(m, n, k, pa, pb, 0, m_panels, beta, c, ldc);
    free(pa);
    return 0;
}

void lk_bf16_kernel_generic(size_t kp, const uint32_t *a, const uint32_t *b, float *c, size_t ldc, float beta) {
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (size_t q = 0; q < kp; q++, a += MR, b += NR) {
        for (size_t r = 0; r < MR; r++) {
            const float a0 = lk_bf16_to_float(a[r] & 0xFFFFu), a1 = lk_bf16_to_float(a[r] >> 16);
            for (size_t j = 0; j < NR; j++)
                acc[r][j] += a0 * lk_bf16_to_float(b[j] & 0xFFFFu) + a1 * lk_bf16_to_float(b[j] >> 16);
        }
    }
    for (size_t r = 0; r < MR; r++)
        for (size_t j = 0; j < NR; j++)
            c[r * ldc + j] = (beta == 0 ? 0 : beta * c[r * ldc + j]) + acc[r][j];
}

void lk_gemm_bf16_naive(int trans_b, size_t m, size_t n, size_t k, const float *a, size_t lda,
                        const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double sum = 0;
            for (size_t p = 0; p < k; p++) {
                const float bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
                sum += (double)lk_bf16_round(a[i * lda + p]) * (double)lk_bf16_round(bv);
            }
            float *t = c + i * ldc + j;
            *t = (float)((beta == 0 ? 0.0 : (double)beta * (double)*t) + sum);
        }
}
