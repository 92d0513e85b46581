// What the 8-bit-activation block products share between the scalar twins (q8dot_scalar.c)
// and the SIMD kernels (q8dot_body.h): the layout of a quantized vector and the one order in
// which every variant adds its float terms, so that all of them give the same bits.
#ifndef LORIKEET_CKERNELS_Q8DOT_H
#define LORIKEET_CKERNELS_Q8DOT_H
#include "internal.h"

/// A vector of n values (n a multiple of 32) quantized per 32: the codes int8 q[n], then the
/// block scales float d[n/32], the code sums int32 s[n/32], and per block the 8 lanes' code
/// sums times −16, int32 o[n/32][8] (lk_q8_bytes(n) bytes). o lets a kernel take weights as
/// unsigned codes c with an offset (Q5_0's c − 16, Q6_K's c − 32): Σ(c − 16)·q over a lane is
/// the integer dot of c and q started from that lane's o.
typedef struct {
    const int8_t *q;
    const float *d;
    const int32_t *s;
    const int32_t *o;
} lk_q8_view;

static inline lk_q8_view lk_q8_at(const void *xq, size_t n) {
    const unsigned char *p = xq;
    lk_q8_view v = {(const int8_t *)p, (const float *)(p + n), (const int32_t *)(p + n + 4 * (n / 32)),
                    (const int32_t *)(p + n + 8 * (n / 32))};
    return v;
}

/// The canonical reduction of 8 float lanes: (l, l+4) pairs, then (0,2) and (1,3), then the two.
static inline float lk_q8_hsum8(const float v[8]) {
    const float h0 = v[0] + v[4], h1 = v[1] + v[5], h2 = v[2] + v[6], h3 = v[3] + v[7];
    return (h0 + h2) + (h1 + h3);
}
#endif
