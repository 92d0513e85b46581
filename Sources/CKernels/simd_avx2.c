// The SIMD kernels for AVX2 + FMA (8 lanes).
#if defined(__x86_64__) || defined(__i386__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define LK_W 8
#define LK_SUFFIX avx2
#include "simd_body.h"
#include "matmul_blocks_body.h"  // the many-vector block products
#pragma clang attribute pop
#endif
