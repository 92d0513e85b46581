// Many input vectors through one matrix of ggml blocks: y[v·ldy + r] = row r · x[v·ldx …] for
// v < nvec, the batched decode step's product (one row of x per sequence). Included from
// simd_avx2.c and simd_avx512.c right after simd_body.h, inside the same target region, so it
// shares that body's vector types and helpers (vf, load, vfma, block_scale, widen, hsum_tree).
//
// Each block is decoded to float weights in registers, LK_W at a time, and every weight
// vector meets all vectors of a tile before the next is decoded: a tile of LK_MM_TILE vectors
// keeps one accumulator per vector in registers, so up to LK_MM_TILE vectors decode each block
// once (more vectors take several tiles, each decoding the row again from L1). No decoded
// weight is ever stored. The `_scalar` twins (matmul_blocks.c) run the matrix-vector twins
// vector by vector.

#if LK_W == 16
#define LK_MM_TILE 16  // 16 accumulators + weights + an x operand fit AVX-512's 32 registers
#else
#define LK_MM_TILE 8  // AVX2 has 16 registers
#endif

/// acc[v] += w · x[v][col … col + LK_W) for each vector of the tile.
#define LK_MM_ACC(w, col)                                                                  \
    do {                                                                                   \
        const vf w_ = (w);                                                                 \
        for (int v_ = 0; v_ < nv; v_++) acc[v_] = vfma(w_, load(x + (size_t)v_ * ldx + (col)), acc[v_]); \
    } while (0)

#if LK_W == 16
static inline vf mm_iota(void) {
    vf t = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    return t;
}
/// The 16-entry table of a nibble's decoded weight, code·a + c.
static inline vf mm_table(float a, float c) { return vfma(mm_iota(), splat(a), splat(c)); }
#endif

/// 32 weights code·a + c of 16 bytes of nibbles (low nibbles: columns col … col + 16, high
/// nibbles: the next 16), with 16·a added where bit j of `high` is set (Q5_0/Q5_1's fifth
/// bits; 0 for the 4-bit types).
#define LK_MM_NIBBLES(q, a, c, high, col) LK_MM_NIBBLES_ISA(q, a, c, high, col)
#if LK_W == 16
/// The 32 weights of LK_MM_NIBBLES as two vectors: lo (columns col … col + 16), hi (the next 16).
static inline void mm_nibbles(const unsigned char *q, float a, float c, uint32_t high, vf *lo, vf *hi) {
    const __m512 t = (__m512)mm_table(a, c), s = _mm512_set1_ps(16.0f * a);
    const __m512i codes = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)q));
    __m512 l = _mm512_permutexvar_ps(codes, t);  // vpermps reads 4 bits
    __m512 h = _mm512_permutexvar_ps(_mm512_srli_epi32(codes, 4), t);
    *lo = (vf)_mm512_mask_add_ps(l, (__mmask16)(high & 0xFFFF), l, s);
    *hi = (vf)_mm512_mask_add_ps(h, (__mmask16)(high >> 16), h, s);
}
#define LK_MM_NIBBLES_ISA(q, a, c, high, col)                                                  \
    do {                                                                                       \
        vf lo_, hi_;                                                                           \
        mm_nibbles((q), (a), (c), (high), &lo_, &hi_);                                         \
        LK_MM_ACC(lo_, (col));                                                                 \
        LK_MM_ACC(hi_, (col) + 16);                                                            \
    } while (0)
#else
#define LK_MM_NIBBLES_ISA(q, a, c, high, col)                                                  \
    do {                                                                                       \
        const vf a_ = splat(a), c_ = splat(c);                                                 \
        for (int j_ = 0; j_ < 16; j_ += LK_W) {                                                \
            const vu32 v_ = widen((q) + j_);                                                   \
            LK_MM_ACC(vfma(u32_to_f((v_ & 0x0Fu) | fifth_bits((high), j_)), a_, c_), (col) + j_); \
            LK_MM_ACC(vfma(u32_to_f((v_ >> 4) | fifth_bits((high), j_ + 16)), a_, c_), (col) + 16 + j_); \
        }                                                                                      \
    } while (0)
#endif

/// Q4_K/Q5_K: 32 bytes of nibbles, the low ones sub-block weights code·a1 + c1 at columns
/// col … col + 32, the high ones code·a2 + c2 at the next 32; Q5_K's fifth bits are bits
/// `bit` and bit + 1 of qh[l] (qh NULL: none).
#if LK_W == 16
#define LK_MM_KPAIR(q, qh, bit, a1, c1, a2, c2, col)                                           \
    do {                                                                                       \
        const __m512 t1_ = (__m512)mm_table((a1), (c1)), t2_ = (__m512)mm_table((a2), (c2));   \
        for (int l_ = 0; l_ < 32; l_ += 16) {                                                  \
            const __m512i codes_ = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)((q) + l_))); \
            __m512 lo_ = _mm512_permutexvar_ps(codes_, t1_);                                   \
            __m512 hi_ = _mm512_permutexvar_ps(_mm512_srli_epi32(codes_, 4), t2_);             \
            if (qh) {                                                                          \
                const __m512i h_ = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)((qh) + l_))); \
                lo_ = _mm512_mask_add_ps(lo_, _mm512_test_epi32_mask(h_, _mm512_set1_epi32(1 << (bit))), lo_, \
                                         _mm512_set1_ps(16.0f * (a1)));                        \
                hi_ = _mm512_mask_add_ps(hi_, _mm512_test_epi32_mask(h_, _mm512_set1_epi32(2 << (bit))), hi_, \
                                         _mm512_set1_ps(16.0f * (a2)));                        \
            }                                                                                  \
            LK_MM_ACC((vf)lo_, (col) + l_);                                                    \
            LK_MM_ACC((vf)hi_, (col) + 32 + l_);                                               \
        }                                                                                      \
    } while (0)
#else
#define LK_MM_KPAIR(q, qh, bit, a1, c1, a2, c2, col)                                           \
    do {                                                                                       \
        const vf a1_ = splat(a1), c1_ = splat(c1), a2_ = splat(a2), c2_ = splat(c2);           \
        for (int l_ = 0; l_ < 32; l_ += LK_W) {                                                \
            const vu32 v_ = widen((q) + l_);                                                   \
            vu32 lo_ = v_ & 0x0Fu, hi_ = v_ >> 4;                                              \
            if (qh) {                                                                          \
                const vu32 h_ = widen((qh) + l_);                                              \
                lo_ |= ((h_ >> (uint32_t)(bit)) & 1u) << 4;                                    \
                hi_ |= ((h_ >> (uint32_t)((bit) + 1)) & 1u) << 4;                              \
            }                                                                                  \
            LK_MM_ACC(vfma(u32_to_f(lo_), a1_, c1_), (col) + l_);                              \
            LK_MM_ACC(vfma(u32_to_f(hi_), a2_, c2_), (col) + 32 + l_);                         \
        }                                                                                      \
    } while (0)
#endif

// One row times a tile of nv vectors: `b` the row's first block, x the tile's first vector,
// y its first output (y[v·ldy]). Always inlined with a constant nv (LK_MM_ROWS's switch), so
// the accumulators are registers and the vector loops unroll.
#define LK_MM_TILE_FN(NAME) static inline __attribute__((always_inline)) void NAME( \
    const unsigned char *b, size_t count, const float *x, size_t ldx, float *y, size_t ldy, const int nv)
#define LK_MM_BEGIN                                                                           \
    vf acc[LK_MM_TILE];                                                                       \
    for (int v = 0; v < nv; v++) acc[v] = splat(0.0f);
#define LK_MM_END for (int v = 0; v < nv; v++) y[(size_t)v * ldy] = hsum_tree(acc[v]);

LK_MM_TILE_FN(mm_q8_0_tile) {
    LK_MM_BEGIN
    for (size_t k = 0; k < count; k++, b += 34) {
        const vf d = splat(block_scale(b));
        for (int j = 0; j < 32; j += LK_W) {
            vs8 c;
            __builtin_memcpy(&c, b + 2 + j, sizeof c);
            LK_MM_ACC(__builtin_convertvector(c, vf) * d, 32 * k + j);
        }
    }
    LK_MM_END
}

LK_MM_TILE_FN(mm_q4_0_tile) {
    LK_MM_BEGIN
    for (size_t k = 0; k < count; k++, b += 18) {
        const float d = block_scale(b);
        LK_MM_NIBBLES(b + 2, d, -8.0f * d, 0u, 32 * k);
    }
    LK_MM_END
}

LK_MM_TILE_FN(mm_q4_1_tile) {
    LK_MM_BEGIN
    for (size_t k = 0; k < count; k++, b += 20) LK_MM_NIBBLES(b + 4, block_scale(b), block_scale(b + 2), 0u, 32 * k);
    LK_MM_END
}

LK_MM_TILE_FN(mm_q5_0_tile) {
    LK_MM_BEGIN
    for (size_t k = 0; k < count; k++, b += 22) {
        const float d = block_scale(b);
        LK_MM_NIBBLES(b + 6, d, -16.0f * d, lk_load_u32le(b + 2), 32 * k);
    }
    LK_MM_END
}

LK_MM_TILE_FN(mm_q5_1_tile) {
    LK_MM_BEGIN
    for (size_t k = 0; k < count; k++, b += 24) LK_MM_NIBBLES(b + 8, block_scale(b), block_scale(b + 2), lk_load_u32le(b + 4), 32 * k);
    LK_MM_END
}

/// Q4_K (bits 4, 144 bytes) or Q5_K (bits 5, 176 bytes): sub-block j's weights are
/// d·sc_j·code − dmin·m_j.
static inline __attribute__((always_inline)) void mm_k45_tile(const unsigned char *b, size_t count, const float *x, size_t ldx,
                                                              float *y, size_t ldy, const int nv, const int bits) {
    LK_MM_BEGIN
    const size_t bytes = bits == 4 ? 144 : 176;
    for (size_t k = 0; k < count; k++, b += bytes) {
        const float d = block_scale(b), dmin = block_scale(b + 2);
        const unsigned char *qh = bits == 5 ? b + 16 : 0, *qs = b + (bits == 4 ? 16 : 48);
        for (int c = 0; c < 4; c++) {
            int sc1, m1, sc2, m2;
            lk_k_scale_min(2 * c, b + 4, &sc1, &m1);
            lk_k_scale_min(2 * c + 1, b + 4, &sc2, &m2);
            LK_MM_KPAIR(qs + 32 * c, qh, 2 * c, d * (float)sc1, -dmin * (float)m1, d * (float)sc2, -dmin * (float)m2,
                        256 * k + 64 * c);
        }
    }
    LK_MM_END
}
LK_MM_TILE_FN(mm_q4_k_tile) { mm_k45_tile(b, count, x, ldx, y, ldy, nv, 4); }
LK_MM_TILE_FN(mm_q5_k_tile) { mm_k45_tile(b, count, x, ldx, y, ldy, nv, 5); }

/// Q6_K: group g's weights are d·scale_g·(code − 32), codes rebuilt as in q6_superblock.
LK_MM_TILE_FN(mm_q6_k_tile) {
    LK_MM_BEGIN
    for (size_t k = 0; k < count; k++, b += 210) {
        const float d = block_scale(b + 208);
        const signed char *sc = (const signed char *)(b + 192);
        for (int half = 0; half < 2; half++) {
            const unsigned char *ql = b + 64 * half, *qh = b + 128 + 32 * half;
            const signed char *sh = sc + 8 * half;
            const size_t col = 256 * k + 128 * half;
            for (int l = 0; l < 32; l += LK_W) {
                const vu32 a = widen(ql + l), c = widen(ql + 32 + l), h = widen(qh + l);
                const int g = l / 16;
                const float s1 = d * (float)sh[g], s2 = d * (float)sh[g + 2], s3 = d * (float)sh[g + 4], s4 = d * (float)sh[g + 6];
                LK_MM_ACC(vfma(u32_to_f((a & 0x0Fu) | ((h & 3u) << 4)), splat(s1), splat(-32.0f * s1)), col + l);
                LK_MM_ACC(vfma(u32_to_f((c & 0x0Fu) | ((h & 0x0Cu) << 2)), splat(s2), splat(-32.0f * s2)), col + 32 + l);
                LK_MM_ACC(vfma(u32_to_f((a >> 4) | (h & 0x30u)), splat(s3), splat(-32.0f * s3)), col + 64 + l);
                LK_MM_ACC(vfma(u32_to_f((c >> 4) | ((h >> 2) & 0x30u)), splat(s4), splat(-32.0f * s4)), col + 96 + l);
            }
        }
    }
    LK_MM_END
}

#if LK_W == 16
// Two rows at a time for the 32-weight block types: each x vector loaded feeds both rows'
// FMAs, in tiles of up to 8 vectors (2 × 8 accumulators). Each (row, vector) accumulator
// takes the same FMAs in the same order as in the one-row tile, so the results are the same
// bits (BlockMatmulTests compares them). scripts/bench/matmul_pair_tiles.sh measures the two
// shapes against each other.
#define LK_MM_PAIR_TILE 8
/// Below this many vectors one row at a time is as fast or faster (2–9 vectors: 0.7–1.0× for
/// pairs on SmolLM2's shapes; 12–16: 1.0–1.6×, most where a row of 1536 columns × 16 vectors
/// of x no longer fits in L1).
#ifndef LK_MM_PAIR_MIN_VECTORS  // scripts/bench/matmul_pair_tiles.sh builds a copy without pairs
#define LK_MM_PAIR_MIN_VECTORS 12
#endif

/// A block's 32 weights as two vectors (columns 0…16 and 16…32), per type.
static inline void mm_q8_0_block(const unsigned char *b, vf *lo, vf *hi) {
    const vf d = splat(block_scale(b));
    vs8 c0, c1;
    __builtin_memcpy(&c0, b + 2, sizeof c0);
    __builtin_memcpy(&c1, b + 18, sizeof c1);
    *lo = __builtin_convertvector(c0, vf) * d;
    *hi = __builtin_convertvector(c1, vf) * d;
}
static inline void mm_q4_0_block(const unsigned char *b, vf *lo, vf *hi) {
    const float d = block_scale(b);
    mm_nibbles(b + 2, d, -8.0f * d, 0u, lo, hi);
}
static inline void mm_q4_1_block(const unsigned char *b, vf *lo, vf *hi) { mm_nibbles(b + 4, block_scale(b), block_scale(b + 2), 0u, lo, hi); }
static inline void mm_q5_0_block(const unsigned char *b, vf *lo, vf *hi) {
    const float d = block_scale(b);
    mm_nibbles(b + 6, d, -16.0f * d, lk_load_u32le(b + 2), lo, hi);
}
static inline void mm_q5_1_block(const unsigned char *b, vf *lo, vf *hi) {
    mm_nibbles(b + 8, block_scale(b), block_scale(b + 2), lk_load_u32le(b + 4), lo, hi);
}

/// Rows b0 and b1 times a tile of nv ≤ LK_MM_PAIR_TILE vectors: y[v·ldy] and y[v·ldy + 1].
#define LK_MM_PAIR_FN(NAME, BLOCK, BYTES)                                                      \
    static inline __attribute__((always_inline)) void NAME(const unsigned char *b0, const unsigned char *b1, \
        size_t count, const float *x, size_t ldx, float *y, size_t ldy, const int nv) {        \
        vf acc0[LK_MM_PAIR_TILE], acc1[LK_MM_PAIR_TILE];                                       \
        for (int v = 0; v < nv; v++) acc0[v] = acc1[v] = splat(0.0f);                          \
        for (size_t k = 0; k < count; k++, b0 += (BYTES), b1 += (BYTES)) {                     \
            vf w0[2], w1[2];                                                                   \
            BLOCK(b0, &w0[0], &w0[1]);                                                         \
            BLOCK(b1, &w1[0], &w1[1]);                                                         \
            for (int h = 0; h < 2; h++) {                                                      \
                for (int v = 0; v < nv; v++) {                                                 \
                    const vf xv = load(x + (size_t)v * ldx + 32 * k + 16 * h);                 \
                    acc0[v] = vfma(w0[h], xv, acc0[v]);                                        \
                    acc1[v] = vfma(w1[h], xv, acc1[v]);                                        \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        for (int v = 0; v < nv; v++) {                                                         \
            y[(size_t)v * ldy] = hsum_tree(acc0[v]);                                           \
            y[(size_t)v * ldy + 1] = hsum_tree(acc1[v]);                                       \
        }                                                                                      \
    }
LK_MM_PAIR_FN(mm_q8_0_pair, mm_q8_0_block, 34)
LK_MM_PAIR_FN(mm_q4_0_pair, mm_q4_0_block, 18)
LK_MM_PAIR_FN(mm_q4_1_pair, mm_q4_1_block, 20)
LK_MM_PAIR_FN(mm_q5_0_pair, mm_q5_0_block, 22)
LK_MM_PAIR_FN(mm_q5_1_pair, mm_q5_1_block, 24)

#define LK_MM_PAIR_CASE(PAIR, n) case n: PAIR(b, b1, count, xt, ldx, yt, ldy, n); break;
/// Row pairs first, vectors in tiles of at most 8 split evenly (9 vectors: 5 + 4, not 8 + 1,
/// since a tile decodes both rows again); an odd last row goes through the one-row tiles.
#define LK_MM_PAIRS(PAIR, BYTES)                                                               \
    for (; nvec >= LK_MM_PAIR_MIN_VECTORS && r + 2 <= rows; r += 2) {                          \
        const unsigned char *b = base + r * count * (BYTES), *b1 = b + count * (BYTES);         \
        const size_t tiles = (nvec + LK_MM_PAIR_TILE - 1) / LK_MM_PAIR_TILE;                   \
        for (size_t t = 0, v0 = 0; t < tiles; t++) {                                           \
            const size_t n = (nvec - v0) / (tiles - t);                                        \
            const float *xt = x + v0 * ldx;                                                    \
            float *yt = y + v0 * ldy + r;                                                      \
            switch ((int)n) {                                                                  \
                LK_MM_PAIR_CASE(PAIR, 1) LK_MM_PAIR_CASE(PAIR, 2) LK_MM_PAIR_CASE(PAIR, 3)    \
                LK_MM_PAIR_CASE(PAIR, 4) LK_MM_PAIR_CASE(PAIR, 5) LK_MM_PAIR_CASE(PAIR, 6)    \
                LK_MM_PAIR_CASE(PAIR, 7) LK_MM_PAIR_CASE(PAIR, 8)                             \
                default: break;                                                                \
            }                                                                                  \
            v0 += n;                                                                           \
        }                                                                                      \
    }
#else
#define LK_MM_PAIRS(PAIR, BYTES)
#endif

#define LK_MM_CASE(TILE, n) case n: TILE(b, count, xt, ldx, yt, ldy, n); break;
/// The public shape of every kernel: rows outer (a row's blocks stay in L1 across its tiles),
/// tiles of up to LK_MM_TILE vectors inner, each tile size its own unrolled instance.
#define LK_MM_ROWS(NAME, TILE, BYTES) LK_MM_ROWS_WITH(NAME, TILE, BYTES, )
/// LK_MM_ROWS after `PAIRS`, a loop taking rows two at a time (LK_MM_PAIRS) or nothing.
#define LK_MM_ROWS_WITH(NAME, TILE, BYTES, PAIRS)                                              \
    void LK_FN(NAME)(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, \
                     float *y, size_t ldy) {                                                   \
        const unsigned char *base = blocks;                                                    \
        size_t r = 0;                                                                          \
        PAIRS                                                                                  \
        for (; r < rows; r++) {                                                                \
            const unsigned char *b = base + r * count * (BYTES);                               \
            for (size_t v0 = 0; v0 < nvec; v0 += LK_MM_TILE) {                                 \
                const size_t left = nvec - v0;                                                 \
                const float *xt = x + v0 * ldx;                                                \
                float *yt = y + v0 * ldy + r;                                                  \
                switch (left < LK_MM_TILE ? (int)left : LK_MM_TILE) {                          \
                    LK_MM_CASE(TILE, 1) LK_MM_CASE(TILE, 2) LK_MM_CASE(TILE, 3) LK_MM_CASE(TILE, 4) \
                    LK_MM_CASE(TILE, 5) LK_MM_CASE(TILE, 6) LK_MM_CASE(TILE, 7) LK_MM_CASE(TILE, 8) \
                    LK_MM_CASES_WIDE(TILE)                                                     \
                    default: break;                                                            \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }
#if LK_MM_TILE == 16
#define LK_MM_CASES_WIDE(TILE)                                                                 \
    LK_MM_CASE(TILE, 9) LK_MM_CASE(TILE, 10) LK_MM_CASE(TILE, 11) LK_MM_CASE(TILE, 12)          \
    LK_MM_CASE(TILE, 13) LK_MM_CASE(TILE, 14) LK_MM_CASE(TILE, 15) LK_MM_CASE(TILE, 16)
#else
#define LK_MM_CASES_WIDE(TILE)
#endif

LK_MM_ROWS_WITH(lk_matmul_q8_0_f32, mm_q8_0_tile, 34, LK_MM_PAIRS(mm_q8_0_pair, 34))
LK_MM_ROWS_WITH(lk_matmul_q4_0_f32, mm_q4_0_tile, 18, LK_MM_PAIRS(mm_q4_0_pair, 18))
LK_MM_ROWS_WITH(lk_matmul_q4_1_f32, mm_q4_1_tile, 20, LK_MM_PAIRS(mm_q4_1_pair, 20))
LK_MM_ROWS_WITH(lk_matmul_q5_0_f32, mm_q5_0_tile, 22, LK_MM_PAIRS(mm_q5_0_pair, 22))
LK_MM_ROWS_WITH(lk_matmul_q5_1_f32, mm_q5_1_tile, 24, LK_MM_PAIRS(mm_q5_1_pair, 24))
LK_MM_ROWS(lk_matmul_q4_k_f32, mm_q4_k_tile, 144)
LK_MM_ROWS(lk_matmul_q5_k_f32, mm_q5_k_tile, 176)
LK_MM_ROWS(lk_matmul_q6_k_f32, mm_q6_k_tile, 210)

#undef LK_MM_CASES_WIDE
#undef LK_MM_ROWS
#undef LK_MM_ROWS_WITH
#undef LK_MM_PAIRS
#undef LK_MM_PAIR_CASE
#undef LK_MM_PAIR_TILE
#undef LK_MM_PAIR_MIN_VECTORS
#undef LK_MM_CASE
#undef LK_MM_TILE
