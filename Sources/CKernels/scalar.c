// The scalar twins: plain loops, obviously right, the reference every SIMD path is tested
// against and the fallback on CPUs without AVX2.
#include "internal.h"

float lk_max_f32_scalar(const float *x, size_t n) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, x[i]);  // maxNum: NaN elements are skipped
    return m;
}

float lk_dot_f32_scalar(const float *a, const float *b, size_t n) {
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

float lk_exp_shift_sum_f32_scalar(const float *x, float shift, float *out, size_t n) {
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) {
        out[i] = lk_expf_scalar(x[i] - shift);
        s += out[i];
    }
    return s;
}

void lk_silu_f32_scalar(const float *x, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = x[i] * lk_sigmoid_scalar(x[i]);
}

void lk_silu_backward_f32_scalar(const float *x, const float *dout, float *dx, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float s = lk_sigmoid_scalar(x[i]);
        dx[i] += dout[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

// GELU's ½(1 + tanh u) equals σ(2u); computing it that way avoids the cancellation of
// 1 + tanh u for negative inputs, where the value is tiny.
void lk_gelu_tanh_f32_scalar(const float *x, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        out[i] = v * lk_sigmoid_scalar(2.0f * LK_GELU_K0 * (v + LK_GELU_K1 * v * v * v));
    }
}

void lk_gelu_tanh_backward_f32_scalar(const float *x, const float *dout, float *dx, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float s = lk_sigmoid_scalar(2.0f * LK_GELU_K0 * (v + LK_GELU_K1 * v * v * v));
        float du = 2.0f * LK_GELU_K0 * (1.0f + 3.0f * LK_GELU_K1 * v * v);  // d(2u)/dx
        dx[i] += dout[i] * (s + v * s * (1.0f - s) * du);
    }
}

void lk_swiglu_f32_scalar(const float *gate, const float *up, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = gate[i] * lk_sigmoid_scalar(gate[i]) * up[i];
}

void lk_swiglu_backward_f32_scalar(const float *gate, const float *up, const float *dout,
                                   float *dgate, float *dup, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], s = lk_sigmoid_scalar(g);
        if (dgate) dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
        if (dup) dup[i] += dout[i] * g * s;
    }
}

void lk_decode_nf4_f32_scalar(const uint8_t *packed, size_t first, size_t n, const float *codebook,
                              const float *scales, float *out) {
    for (size_t i = 0; i < n; i++) {
        const size_t e = first + i;
        const unsigned code = e & 1 ? packed[e >> 1] & 15u : packed[e >> 1] >> 4;
        out[i] = codebook[code] * scales[e / 64 - first / 64];
    }
}

void lk_dropout_f32_scalar(uint64_t seed, uint64_t first, const float *x, float *out, size_t n, uint32_t threshold, float scale) {
    for (size_t i = 0; i < n; i++)
        out[i] = (uint32_t)(lk_splitmix64_at(seed, first + i) >> 40) < threshold ? 0.0f : x[i] * scale;
}

void lk_dropout_backward_f32_scalar(uint64_t seed, uint64_t first, const float *dy, float *dx, size_t n, uint32_t threshold, float scale) {
    for (size_t i = 0; i < n; i++)
        if ((uint32_t)(lk_splitmix64_at(seed, first + i) >> 40) >= threshold) dx[i] += dy[i] * scale;
}

float lk_dot_q8_0_f32_scalar(const void *blocks, const float *x, size_t count) {
    const unsigned char *b = blocks;
    float total = 0.0f;
    for (size_t k = 0; k < count; k++, b += 34, x += 32) {
        const signed char *q = (const signed char *)(b + 2);
        float s = 0.0f;
        for (int j = 0; j < 32; j++) s += (float)q[j] * x[j];
        total += lk_half_to_float(b) * s;
    }
    return total;
}

float lk_dot_q4_0_f32_scalar(const void *blocks, const float *x, size_t count) {
    const unsigned char *b = blocks;
    float total = 0.0f;
    for (size_t k = 0; k < count; k++, b += 18, x += 32) {
        const unsigned char *q = b + 2;
        float s = 0.0f;
        for (int j = 0; j < 16; j++) s += (float)((int)(q[j] & 0x0F) - 8) * x[j] + (float)((int)(q[j] >> 4) - 8) * x[j + 16];
        total += lk_half_to_float(b) * s;
    }
    return total;
}

float lk_dot_q4_1_f32_scalar(const void *blocks, const float *x, size_t count) {
    const unsigned char *b = blocks;
    float total = 0.0f;
    for (size_t k = 0; k < count; k++, b += 20, x += 32) {
        const unsigned char *q = b + 4;
        float s = 0.0f, sx = 0.0f;
        for (int j = 0; j < 16; j++) {
            s += (float)(q[j] & 0x0F) * x[j] + (float)(q[j] >> 4) * x[j + 16];
            sx += x[j] + x[j + 16];
        }
        total += lk_half_to_float(b) * s + lk_half_to_float(b + 2) * sx;
    }
    return total;
}

// The matrix twins: one row after another through the row twins above.
void lk_matvec_q8_0_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    for (size_t r = 0; r < rows; r++) y[r] = lk_dot_q8_0_f32_scalar((const unsigned char *)blocks + r * count * 34, x, count);
}

void lk_matvec_q4_0_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    for (size_t r = 0; r < rows; r++) y[r] = lk_dot_q4_0_f32_scalar((const unsigned char *)blocks + r * count * 18, x, count);
}

void lk_matvec_q4_1_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    for (size_t r = 0; r < rows; r++) y[r] = lk_dot_q4_1_f32_scalar((const unsigned char *)blocks + r * count * 20, x, count);
}

float lk_dot_f16_f32_scalar(const void *h, const float *x, size_t n) {
    const unsigned char *p = h;
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += lk_half_to_float(p + 2 * i) * x[i];
    return s;
}

// ---- Q5_0, Q5_1 and the K-quants: each row evaluated directly, sub-block by sub-block ----

static float dot_q5_0_row(const unsigned char *b, const float *x, size_t count) {
    float total = 0.0f;
    for (size_t k = 0; k < count; k++, b += 22, x += 32) {
        const uint32_t qh = lk_load_u32le(b + 2);
        const unsigned char *q = b + 6;
        float s = 0.0f;
        for (int j = 0; j < 16; j++) {
            const int lo = (q[j] & 0x0F) | (int)(((qh >> j) & 1u) << 4);
            const int hi = (q[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            s += (float)(lo - 16) * x[j] + (float)(hi - 16) * x[j + 16];
        }
        total += lk_half_to_float(b) * s;
    }
    return total;
}

static float dot_q5_1_row(const unsigned char *b, const float *x, size_t count) {
    float total = 0.0f;
    for (size_t k = 0; k < count; k++, b += 24, x += 32) {
        const uint32_t qh = lk_load_u32le(b + 4);
        const unsigned char *q = b + 8;
        float s = 0.0f, sx = 0.0f;
        for (int j = 0; j < 16; j++) {
            const int lo = (q[j] & 0x0F) | (int)(((qh >> j) & 1u) << 4);
            const int hi = (q[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            s += (float)lo * x[j] + (float)hi * x[j + 16];
            sx += x[j] + x[j + 16];
        }
        total += lk_half_to_float(b) * s + lk_half_to_float(b + 2) * sx;
    }
    return total;
}

/// Q4_K (bits == 4) and Q5_K (bits == 5): sub-block j of 32 weights is d·sc_j·Σq·x − dmin·m_j·Σx.
static float dot_q45_k_row(const unsigned char *b, const float *x, size_t count, int bits) {
    const size_t bytes = bits == 4 ? 144 : 176;
    float total = 0.0f;
    for (size_t k = 0; k < count; k++, b += bytes, x += 256) {
        const float d = lk_half_to_float(b), dmin = lk_half_to_float(b + 2);
        const unsigned char *qh = b + 16, *qs = b + (bits == 4 ? 16 : 48);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            lk_k_scale_min(j, b + 4, &sc, &m);
            const unsigned char *q = qs + 32 * (j / 2);
            const int shift = 4 * (j % 2);
            const float *xj = x + 32 * j;
            float s = 0.0f, sx = 0.0f;
            for (int l = 0; l < 32; l++) {
                int code = (q[l] >> shift) & 0x0F;
                if (bits == 5) code |= ((qh[l] >> j) & 1) << 4;
                s += (float)code * xj[l];
                sx += xj[l];
            }
            total += d * (float)sc * s - dmin * (float)m * sx;
        }
    }
    return total;
}

/// Q6_K: group g of 16 weights is d·scale_g·Σ(q − 32)·x.
static float dot_q6_k_row(const unsigned char *b, const float *x, size_t count) {
    float total = 0.0f;
    for (size_t k = 0; k < count; k++, b += 210, x += 256) {
        const float d = lk_half_to_float(b + 208);
        const signed char *sc = (const signed char *)(b + 192);
        for (int g = 0; g < 16; g++) {
            float s = 0.0f;
            for (int i = 16 * g; i < 16 * g + 16; i++) {  // weight i of the super-block
                const int half = i / 128, within = i % 128, quarter = within / 32, l = within % 32;
                const unsigned char low = b[64 * half + l + 32 * (quarter % 2)];
                const int nibble = quarter < 2 ? (low & 0x0F) : (low >> 4);
                const int high = (b[128 + 32 * half + l] >> (2 * quarter)) & 3;
                s += (float)((nibble | (high << 4)) - 32) * x[i];
            }
            total += d * (float)sc[g] * s;
        }
    }
    return total;
}

void lk_matvec_q5_0_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    for (size_t r = 0; r < rows; r++) y[r] = dot_q5_0_row((const unsigned char *)blocks + r * count * 22, x, count);
}

void lk_matvec_q5_1_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    for (size_t r = 0; r < rows; r++) y[r] = dot_q5_1_row((const unsigned char *)blocks + r * count * 24, x, count);
}

void lk_matvec_q4_k_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    for (size_t r = 0; r < rows; r++) y[r] = dot_q45_k_row((const unsigned char *)blocks + r * count * 144, x, count, 4);
}

void lk_matvec_q5_k_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    for (size_t r = 0; r < rows; r++) y[r] = dot_q45_k_row((const unsigned char *)blocks + r * count * 176, x, count, 5);
}

void lk_matvec_q6_k_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, float *y) {
    for (size_t r = 0; r < rows; r++) y[r] = dot_q6_k_row((const unsigned char *)blocks + r * count * 210, x, count);
}
