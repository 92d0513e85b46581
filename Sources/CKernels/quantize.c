// ggml block encoding (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K): the bytes ggml's
// reference quantizers (`quantize_row_*_ref`, what llama.cpp's quantizer runs without an
// importance matrix) write for the same floats. Byte equality depends on evaluating every float
// operation in the reference's order and precision, so this file never fuses or reassociates:
// each expression below keeps the reference's operand order, sums run in index order in f32,
// and integer conversions truncate or round exactly as the reference's casts do.
#include "internal.h"
#include <float.h>
#include <string.h>

#pragma clang fp contract(off)

// ---- shared helpers --------------------------------------------------------------------

/// f32 → IEEE half, round to nearest even (ggml's GGML_FP32_TO_FP16 for finite values;
/// overflow gives ±inf, NaN a quiet NaN).
static uint16_t lk_float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    const uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) return (uint16_t)(sign | 0x7E00u);
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);  // ≥ 65520 rounds to inf
    if (ax < 0x38800000u) {                                       // below 2⁻¹⁴: a subnormal half
        if (ax < 0x33000000u) return (uint16_t)sign;              // < 2⁻²⁵ (2⁻²⁵ ties to 0)
        const uint32_t e = ax >> 23, m = (ax & 0x7FFFFFu) | 0x800000u, shift = 126 - e;
        uint32_t q = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    const uint32_t r = ax + 0xFFFu + ((ax >> 13) & 1u) - (112u << 23);
    return (uint16_t)(sign | (r >> 13));
}

static inline void lk_store_half(unsigned char *p, float f) {
    const uint16_t h = lk_float_to_half(f);
    p[0] = (unsigned char)(h & 0xFF);
    p[1] = (unsigned char)(h >> 8);
}

/// Round to nearest (ties to even) through the 1.5·2²³ trick, exactly as ggml's nearest_int,
/// including what it gives outside its ±4194303 domain.
static inline int lk_nearest_int(float f) {
    const float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007FFFFF) - 0x00400000;
}

static inline int lk_min_int(int a, int b) { return a < b ? a : b; }
static inline int lk_max_int(int a, int b) { return a > b ? a : b; }

uint16_t lk_f32_to_f16(float x) { return lk_float_to_half(x); }

// ---- 32-value blocks -------------------------------------------------------------------

void lk_quantize_q8_0(const float *x, size_t count, void *out) {
    unsigned char *b = out;
    for (size_t k = 0; k < count; k++, x += 32, b += 34) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        lk_store_half(b, d);
        for (int j = 0; j < 32; j++) b[2 + j] = (unsigned char)(signed char)(int)roundf(x[j] * id);
    }
}

/// Q4_0/Q5_0: the value of largest magnitude (first on ties) sets d = max / −(2^(bits−1)).
static float lk_signed_extreme(const float *x) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++) {
        if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
    }
    return max;
}

void lk_quantize_q4_0(const float *x, size_t count, void *out) {
    unsigned char *b = out;
    for (size_t k = 0; k < count; k++, x += 32, b += 18) {
        const float d = lk_signed_extreme(x) / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        lk_store_half(b, d);
        for (int j = 0; j < 16; j++) {
            const int q0 = lk_min_int(15, (signed char)(int)(x[j] * id + 8.5f));
            const int q1 = lk_min_int(15, (signed char)(int)(x[j + 16] * id + 8.5f));
            b[2 + j] = (unsigned char)((q0 & 0xFF) | ((q1 & 0xFF) << 4));
        }
    }
}

/// Q4_1/Q5_1: min and max of the block.
static void lk_min_max(const float *x, float *min, float *max) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *min = lo;
    *max = hi;
}

void lk_quantize_q4_1(const float *x, size_t count, void *out) {
    unsigned char *b = out;
    for (size_t k = 0; k < count; k++, x += 32, b += 20) {
        float min, max;
        lk_min_max(x, &min, &max);
        const float d = (max - min) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        lk_store_half(b, d);
        lk_store_half(b + 2, min);
        for (int j = 0; j < 16; j++) {
            const int q0 = lk_min_int(15, (signed char)(int)((x[j] - min) * id + 0.5f));
            const int q1 = lk_min_int(15, (signed char)(int)((x[j + 16] - min) * id + 0.5f));
            b[4 + j] = (unsigned char)((q0 & 0xFF) | ((q1 & 0xFF) << 4));
        }
    }
}

void lk_quantize_q5_0(const float *x, size_t count, void *out) {
    unsigned char *b = out;
    for (size_t k = 0; k < count; k++, x += 32, b += 22) {
        const float d = lk_signed_extreme(x) / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        lk_store_half(b, d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const unsigned char q0 = (unsigned char)lk_min_int(31, (signed char)(int)(x[j] * id + 16.5f));
            const unsigned char q1 = (unsigned char)lk_min_int(31, (signed char)(int)(x[j + 16] * id + 16.5f));
            b[6 + j] = (unsigned char)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= ((q0 & 0x10u) >> 4) << j;
            qh |= ((q1 & 0x10u) >> 4) << (j + 16);
        }
        for (int i = 0; i < 4; i++) b[2 + i] = (unsigned char)(qh >> (8 * i));
    }
}

void lk_quantize_q5_1(const float *x, size_t count, void *out) {
    unsigned char *b = out;
    for (size_t k = 0; k < count; k++, x += 32, b += 24) {
        float min, max;
        lk_min_max(x, &min, &max);
        const float d = (max - min) / 31.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        lk_store_half(b, d);
        lk_store_half(b + 2, min);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const unsigned char q0 = (unsigned char)(int)((x[j] - min) * id + 0.5f);
            const unsigned char q1 = (unsigned char)(int)((x[j + 16] - min) * id + 0.5f);
            b[8 + j] = (unsigned char)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= ((q0 & 0x10u) >> 4) << j;
            qh |= ((q1 & 0x10u) >> 4) << (j + 16);
        }
        for (int i = 0; i < 4; i++) b[4 + i] = (unsigned char)(qh >> (8 * i));
    }
}

// ---- K-quants (super-blocks of 256) -----------------------------------------------------

/// ggml's make_qkx2_quants: codes L[0..n) in [0, nmax] and a scale and (negated) minimum for
/// x ≈ scale·L − the_min, searched over nstep + 1 candidate scales by weighted least squares.
static float lk_make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                                 float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        const int l = lk_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)lk_max_int(0, lk_min_int(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = diff * diff;
        best_error += weights[i] * diff;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = lk_nearest_int(iscale * (x[i] - min));
            l = lk_max_int(0, lk_min_int(nmax, l));
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; ++i) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/// Q4_K and Q5_K share everything but the code width (nmax 15 or 31) and the search range;
/// writes d, dmin and the 12 scale bytes at b and the codes (0 ..< nmax + 1) into L.
static void lk_kquant_scales(const float *x, int nmax, float rmin, int nstep, unsigned char *b, uint8_t *L) {
    uint8_t Laux[32];
    float weights[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = lk_make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    unsigned char *sc = b + 4;
    for (int j = 0; j < 8; ++j) {
        uint8_t ls = (uint8_t)lk_nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)lk_nearest_int(inv_min * mins[j]);
        if (ls > 63) ls = 63;
        if (lm > 63) lm = 63;
        if (j < 4) {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (unsigned char)((ls & 0xF) | ((lm & 0xF) << 4));
            sc[j - 4] |= (unsigned char)((ls >> 4) << 6);
            sc[j] |= (unsigned char)((lm >> 4) << 6);
        }
    }
    lk_store_half(b, max_scale / 63.f);
    lk_store_half(b + 2, max_min / 63.f);
    const float dh = lk_half_to_float(b), dminh = lk_half_to_float(b + 2);
    for (int j = 0; j < 8; ++j) {
        int s, m;
        lk_k_scale_min(j, sc, &s, &m);
        const float d = dh * s;
        if (d == 0.0f) continue;
        const float dm = dminh * m;
        for (int ii = 0; ii < 32; ++ii) {
            const int l = lk_nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)lk_max_int(0, lk_min_int(nmax, l));
        }
    }
}

void lk_quantize_q4_k(const float *x, size_t count, void *out) {
    unsigned char *b = out;
    uint8_t L[256];
    for (size_t k = 0; k < count; k++, x += 256, b += 144) {
        lk_kquant_scales(x, 15, -1.f, 20, b, L);
        unsigned char *q = b + 16;
        for (int j = 0; j < 256; j += 64, q += 32) {
            for (int l = 0; l < 32; ++l) q[l] = (unsigned char)(L[j + l] | (L[j + l + 32] << 4));
        }
    }
}

void lk_quantize_q5_k(const float *x, size_t count, void *out) {
    unsigned char *b = out;
    uint8_t L[256];
    for (size_t k = 0; k < count; k++, x += 256, b += 176) {
        lk_kquant_scales(x, 31, -0.5f, 15, b, L);
        unsigned char *qh = b + 16, *ql = b + 48;
        memset(qh, 0, 32);
        unsigned char m1 = 1, m2 = 2;
        for (int n = 0; n < 256; n += 64, ql += 32) {
            for (int j = 0; j < 32; ++j) {
                int l1 = L[n + j], l2 = L[n + j + 32];
                if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                ql[j] = (unsigned char)(l1 | (l2 << 4));
            }
            m1 = (unsigned char)(m1 << 2);
            m2 = (unsigned char)(m2 << 2);
        }
    }
}

/// ggml's make_qx_quants with rmse_type 1 and no importance weights (w = x²): signed codes
/// L + nmax in [0, 2·nmax) and their scale, the best of 19 candidate scales.
static float lk_make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < 1e-15f) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = lk_nearest_int(iscale * x[i]);
        l = lk_max_int(-nmax, lk_min_int(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = lk_nearest_int(iscale * x[i]);
            l = lk_max_int(-nmax, lk_min_int(nmax - 1, l));
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                const int l = lk_nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + lk_max_int(-nmax, lk_min_int(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

void lk_quantize_q6_k(const float *x, size_t count, void *out) {
    unsigned char *b = out;
    int8_t L[256];
    float scales[16];
    for (size_t k = 0; k < count; k++, x += 256, b += 210) {
        unsigned char *ql = b, *qh = b + 128, *dp = b + 208;
        signed char *sc = (signed char *)(b + 192);
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < 16; ++ib) {
            const float scale = lk_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            const float abs_scale = fabsf(scale);
            if (abs_scale > max_abs_scale) { max_abs_scale = abs_scale; max_scale = scale; }
        }
        if (max_abs_scale < 1e-15f) {
            memset(b, 0, 210);
            continue;
        }
        const float iscale = -128.f / max_scale;
        lk_store_half(dp, 1 / iscale);
        for (int ib = 0; ib < 16; ++ib) sc[ib] = (signed char)lk_min_int(127, lk_nearest_int(iscale * scales[ib]));
        const float dh = lk_half_to_float(dp);
        for (int j = 0; j < 16; ++j) {
            const float d = dh * sc[j];
            if (d == 0.0f) continue;
            for (int ii = 0; ii < 16; ++ii) {
                const int l = lk_nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(lk_max_int(-32, lk_min_int(31, l)) + 32);
            }
        }
        for (int j = 0; j < 256; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; ++l) {
                const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = (unsigned char)(q1 | (q3 << 4));
                ql[l + 32] = (unsigned char)(q2 | (q4 << 4));
                qh[l] = (unsigned char)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4)
                                        | ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}
