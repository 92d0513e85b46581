// The ggml block decoders (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K), written once and
// compiled three times: plain (dequant.c, the `_scalar` twins), and under AVX2 and AVX-512
// targets (dequant_avx2.c, dequant_avx512.c) where the compiler vectorises the same loops. Float
// contraction stays off everywhere, so every variant writes the same bits: d·q + m rounds twice,
// as ggml's reference and the gguf package do. Include with LK_DQ(name) defined.
#include "internal.h"


void LK_DQ(lk_dequant_q8_0)(const void *blocks, size_t count, float *out) {
    const unsigned char *b = blocks;
    for (size_t k = 0; k < count; k++, b += 34, out += 32) {
        const float d = lk_half_to_float(b);
        const signed char *q = (const signed char *)(b + 2);
        for (int j = 0; j < 32; j++) out[j] = (float)q[j] * d;
    }
}

void LK_DQ(lk_dequant_q4_0)(const void *blocks, size_t count, float *out) {
    const unsigned char *b = blocks;
    for (size_t k = 0; k < count; k++, b += 18, out += 32) {
        const float d = lk_half_to_float(b);
        const unsigned char *q = b + 2;
        for (int j = 0; j < 16; j++) {
            out[j] = (float)((int)(q[j] & 0x0F) - 8) * d;
            out[j + 16] = (float)((int)(q[j] >> 4) - 8) * d;
        }
    }
}

void LK_DQ(lk_dequant_q4_1)(const void *blocks, size_t count, float *out) {
    const unsigned char *b = blocks;
    for (size_t k = 0; k < count; k++, b += 20, out += 32) {
        const float d = lk_half_to_float(b), m = lk_half_to_float(b + 2);
        const unsigned char *q = b + 4;
        for (int j = 0; j < 16; j++) {
            out[j] = (float)(q[j] & 0x0F) * d + m;
            out[j + 16] = (float)(q[j] >> 4) * d + m;
        }
    }
}

// Q5_0 and Q5_1: a fifth bit per weight from a little-endian 32-bit word (bit j for weight j).
void LK_DQ(lk_dequant_q5_0)(const void *blocks, size_t count, float *out) {
    const unsigned char *b = blocks;
    for (size_t k = 0; k < count; k++, b += 22, out += 32) {
        const float d = lk_half_to_float(b);
        const uint32_t qh = lk_load_u32le(b + 2);
        const unsigned char *q = b + 6;
        for (int j = 0; j < 16; j++) {
            const int lo = (q[j] & 0x0F) | (int)(((qh >> j) & 1u) << 4);
            const int hi = (q[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            out[j] = (float)(lo - 16) * d;
            out[j + 16] = (float)(hi - 16) * d;
        }
    }
}

void LK_DQ(lk_dequant_q5_1)(const void *blocks, size_t count, float *out) {
    const unsigned char *b = blocks;
    for (size_t k = 0; k < count; k++, b += 24, out += 32) {
        const float d = lk_half_to_float(b), m = lk_half_to_float(b + 2);
        const uint32_t qh = lk_load_u32le(b + 4);
        const unsigned char *q = b + 8;
        for (int j = 0; j < 16; j++) {
            const int lo = (q[j] & 0x0F) | (int)(((qh >> j) & 1u) << 4);
            const int hi = (q[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            out[j] = (float)lo * d + m;
            out[j + 16] = (float)hi * d + m;
        }
    }
}

// The K-quants: super-blocks of 256 weights. Each sub-block's scale is formed first (d·sc,
// dmin·m) and then applied, (d·sc)·q − dmin·m, in the order the gguf package evaluates it.

/// Q4_K (144 bytes): d, dmin, 12 bytes of 6-bit scales and mins for 8 sub-blocks of 32, then
/// 128 bytes of nibbles: 64-weight chunk c takes the low nibbles of bytes 32c..32c+31, then
/// their high nibbles.
void LK_DQ(lk_dequant_q4_k)(const void *blocks, size_t count, float *out) {
    const unsigned char *b = blocks;
    for (size_t k = 0; k < count; k++, b += 144, out += 256) {
        const float d = lk_half_to_float(b), dmin = lk_half_to_float(b + 2);
        const unsigned char *q = b + 16;
        for (int c = 0; c < 4; c++, q += 32) {
            int sc1, m1, sc2, m2;
            lk_k_scale_min(2 * c, b + 4, &sc1, &m1);
            lk_k_scale_min(2 * c + 1, b + 4, &sc2, &m2);
            const float d1 = d * (float)sc1, min1 = dmin * (float)m1;
            const float d2 = d * (float)sc2, min2 = dmin * (float)m2;
            float *y = out + 64 * c;
            for (int l = 0; l < 32; l++) {
                y[l] = d1 * (float)(q[l] & 0x0F) - min1;
                y[l + 32] = d2 * (float)(q[l] >> 4) - min2;
            }
        }
    }
}

/// Q5_K (176 bytes): as Q4_K, with 32 bytes of high bits after the scales: chunk c's low
/// half takes bit 2c of qh[l], its high half bit 2c + 1.
void LK_DQ(lk_dequant_q5_k)(const void *blocks, size_t count, float *out) {
    const unsigned char *b = blocks;
    for (size_t k = 0; k < count; k++, b += 176, out += 256) {
        const float d = lk_half_to_float(b), dmin = lk_half_to_float(b + 2);
        const unsigned char *qh = b + 16, *q = b + 48;
        for (int c = 0; c < 4; c++, q += 32) {
            int sc1, m1, sc2, m2;
            lk_k_scale_min(2 * c, b + 4, &sc1, &m1);
            lk_k_scale_min(2 * c + 1, b + 4, &sc2, &m2);
            const float d1 = d * (float)sc1, min1 = dmin * (float)m1;
            const float d2 = d * (float)sc2, min2 = dmin * (float)m2;
            float *y = out + 64 * c;
            for (int l = 0; l < 32; l++) {
                const int lo = (q[l] & 0x0F) | (((qh[l] >> (2 * c)) & 1) << 4);
                const int hi = (q[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4);
                y[l] = d1 * (float)lo - min1;
                y[l + 32] = d2 * (float)hi - min2;
            }
        }
    }
}

/// Q6_K (210 bytes): 128 bytes of low nibbles, 64 of 2-bit high pairs, 16 signed 8-bit scales
/// (one per 16 weights), d last. Each half of 128 weights: weight 32i + l (i < 4) takes nibble
/// i/2 of ql[l + 32·(i%2)] and bits 2i..2i+1 of qh[l]; value (d·scale)·(q − 32). The loop runs
/// over 16 weights per scale so that the scales are loop-invariant and the body vectorises.
void LK_DQ(lk_dequant_q6_k)(const void *blocks, size_t count, float *out) {
    const unsigned char *b = blocks;
    for (size_t k = 0; k < count; k++, b += 210, out += 256) {
        const float d = lk_half_to_float(b + 208);
        for (int half = 0; half < 2; half++) {
            const unsigned char *ql = b + 64 * half, *qh = b + 128 + 32 * half;
            const signed char *sc = (const signed char *)(b + 192 + 8 * half);
            float *y = out + 128 * half;
            for (int s = 0; s < 2; s++) {
                const float d1 = d * (float)sc[s], d2 = d * (float)sc[s + 2];
                const float d3 = d * (float)sc[s + 4], d4 = d * (float)sc[s + 6];
                for (int l = 16 * s; l < 16 * s + 16; l++) {
                    const int q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) - 32;
                    const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = d1 * (float)q1;
                    y[l + 32] = d2 * (float)q2;
                    y[l + 64] = d3 * (float)q3;
                    y[l + 96] = d4 * (float)q4;
                }
            }
        }
    }
}
