// The 8-bit-activation block products, scalar: the reference that defines their arithmetic
// (CKernels.h, "Block products over 8-bit activations"). Every integer sum is exact; the float
// terms are added in one fixed order, lane by lane, which the SIMD kernels reproduce.
#include "q8dot.h"

size_t lk_q8_bytes(size_t n) { return 2 * n + 8 * (n / 32); }

void lk_quantize_q8_scalar(const float *x, size_t n, void *out) {
    int8_t *q = out;
    float *d = (float *)((unsigned char *)out + n);
    int32_t *s = (int32_t *)((unsigned char *)out + n + 4 * (n / 32));
    int32_t *o = (int32_t *)((unsigned char *)out + n + 8 * (n / 32));
    for (size_t b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(xb[i]));
        const float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) {
            const int c = (int)nearbyintf(xb[i] * id);  // to nearest, ties to even (cvtps2dq)
            q[32 * b + i] = (int8_t)c;
            sum += c;
        }
        d[b] = db;
        s[b] = sum;
        for (int l = 0; l < 8; l++) {
            const int8_t *c = q + 32 * b + 4 * l;
            o[8 * b + (size_t)l] = -16 * (c[0] + c[1] + c[2] + c[3]);
        }
    }
}

/// Lane l of a 32-value block: Σ over values 4l … 4l+3 of w·q.
static inline int32_t lane_dot(const int *w, const int8_t *q, int l) {
    int32_t p = 0;
    for (int i = 4 * l; i < 4 * l + 4; i++) p += w[i] * q[i];
    return p;
}

static inline void add_lanes(float acc[8], float scale, const int32_t p[8]) {
    for (int l = 0; l < 8; l++) acc[l] = fmaf(scale, (float)p[l], acc[l]);
}

static float q5_0_row(const unsigned char *b, size_t count, lk_q8_view x) {
    float acc[2][8] = {{0}};
    for (size_t k = 0; k < count; k++, b += 22) {
        const uint32_t qh = lk_load_u32le(b + 2);
        int w[32];
        int32_t p[8];
        for (int i = 0; i < 32; i++) w[i] = ((i < 16 ? b[6 + i] & 15 : b[6 + i - 16] >> 4) | (int)(((qh >> i) & 1) << 4)) - 16;
        for (int l = 0; l < 8; l++) p[l] = lane_dot(w, x.q + 32 * k, l);
        add_lanes(acc[k & 1], lk_half_to_float(b) * x.d[k], p);
    }
    float v[8];
    for (int l = 0; l < 8; l++) v[l] = acc[0][l] + acc[1][l];
    return lk_q8_hsum8(v);
}

static float q4_k_row(const unsigned char *b, size_t count, lk_q8_view x) {
    float acc[2][8] = {{0}}, mins[8] = {0};
    for (size_t k = 0; k < count; k++, b += 144) {
        const float d = lk_half_to_float(b), dmin = lk_half_to_float(b + 2);
        for (int j = 0; j < 8; j++) {
            const size_t g = 8 * k + (size_t)j;
            int sc, m, w[32];
            int32_t p[8];
            lk_k_scale_min(j, b + 4, &sc, &m);
            for (int i = 0; i < 32; i++) w[i] = j & 1 ? b[16 + 32 * (j / 2) + i] >> 4 : b[16 + 32 * (j / 2) + i] & 15;
            for (int l = 0; l < 8; l++) p[l] = lane_dot(w, x.q + 32 * g, l);
            add_lanes(acc[j & 1], d * (float)sc * x.d[g], p);
            mins[j] = fmaf(dmin * (float)m * x.d[g], (float)x.s[g], mins[j]);
        }
    }
    float v[8];
    for (int l = 0; l < 8; l++) v[l] = acc[0][l] + acc[1][l];
    return lk_q8_hsum8(v) - lk_q8_hsum8(mins);
}

static float q6_k_row(const unsigned char *b, size_t count, lk_q8_view x) {
    float acc[2][8] = {{0}};
    for (size_t k = 0; k < count; k++, b += 210) {
        const float d = lk_half_to_float(b + 208);
        const signed char *sc = (const signed char *)(b + 192);
        for (int j = 0; j < 8; j++) {
            const size_t g = 8 * k + (size_t)j;
            const int half = j / 4, t = j % 4;
            const unsigned char *ql = b + 64 * half + (t & 1 ? 32 : 0), *qh = b + 128 + 32 * half;
            int w[32];
            int32_t p[8];
            for (int i = 0; i < 32; i++) w[i] = ((t < 2 ? ql[i] & 15 : ql[i] >> 4) | (((qh[i] >> (2 * t)) & 3) << 4)) - 32;
            for (int l = 0; l < 8; l++) p[l] = sc[8 * half + 2 * t + l / 4] * lane_dot(w, x.q + 32 * g, l);
            add_lanes(acc[j & 1], d * x.d[g], p);
        }
    }
    float v[8];
    for (int l = 0; l < 8; l++) v[l] = acc[0][l] + acc[1][l];
    return lk_q8_hsum8(v);
}

#define LK_Q8_TWINS(TYPE, ELEMENTS, BYTES)                                                           \
    void lk_matvec_##TYPE##_q8_scalar(const void *blocks, size_t rows, size_t count, const void *xq, float *y) { \
        const lk_q8_view x = lk_q8_at(xq, (ELEMENTS) * count);                                       \
        for (size_t r = 0; r < rows; r++) y[r] = TYPE##_row((const unsigned char *)blocks + r * count * (BYTES), count, x); \
    }                                                                                                \
    void lk_matmul_##TYPE##_q8_scalar(const void *blocks, size_t rows, size_t count, const void *xq, size_t nvec, \
                                      float *y, size_t ldy) {                                       \
        const size_t bytes = lk_q8_bytes((ELEMENTS) * count);                                        \
        for (size_t v = 0; v < nvec; v++)                                                            \
            lk_matvec_##TYPE##_q8_scalar(blocks, rows, count, (const unsigned char *)xq + v * bytes, y + v * ldy); \
    }

LK_Q8_TWINS(q5_0, 32, 22)
LK_Q8_TWINS(q4_k, 256, 144)
LK_Q8_TWINS(q6_k, 256, 210)
