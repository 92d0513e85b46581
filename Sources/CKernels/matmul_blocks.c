// The many-vector block products' scalar twins: the matrix-vector twins of scalar.c, one
// vector at a time (the SIMD kernels are in matmul_blocks_body.h, the dispatch in dispatch.c).
#include "internal.h"

#define LK_MATMUL_TWIN(TYPE)                                                                       \
    void lk_matmul_##TYPE##_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, \
                                       size_t nvec, size_t ldx, float *y, size_t ldy) {          \
        for (size_t v = 0; v < nvec; v++) lk_matvec_##TYPE##_f32_scalar(blocks, rows, count, x + v * ldx, y + v * ldy); \
    }

LK_MATMUL_TWIN(q8_0)
LK_MATMUL_TWIN(q4_0)
LK_MATMUL_TWIN(q4_1)
LK_MATMUL_TWIN(q5_0)
LK_MATMUL_TWIN(q5_1)
LK_MATMUL_TWIN(q4_k)
LK_MATMUL_TWIN(q5_k)
LK_MATMUL_TWIN(q6_k)
