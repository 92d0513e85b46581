// ggml block decoding (Q8_0, Q4_0, Q4_1), the hot loop of every forward pass over a GGUF base.
// Compiled at -O3 in every build configuration, so debug builds decode at full speed too.
#include "internal.h"
#include <string.h>

// d·q + m must round twice, as ggml's reference and the gguf package do: never fuse.
#pragma clang fp contract(off)


void lk_dequant_q8_0(const void *blocks, size_t count, float *out) {
    const unsigned char *b = blocks;
    for (size_t k = 0; k < count; k++, b += 34, out += 32) {
        const float d = lk_half_to_float(b);
        const signed char *q = (const signed char *)(b + 2);
        for (int j = 0; j < 32; j++) out[j] = (float)q[j] * d;
    }
}

void lk_dequant_q4_0(const void *blocks, size_t count, float *out) {
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

void lk_dequant_q4_1(const void *blocks, size_t count, float *out) {
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
