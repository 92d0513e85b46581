// The SIMD kernels for AVX-512F (16 lanes).
#if defined(__x86_64__)
#include <immintrin.h>  // the nibble-table permute (vpermps) of the block kernels
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma,f16c"))), apply_to = function)
#define LK_W 16
#define LK_SUFFIX avx512
#include "simd_body.h"
#pragma clang attribute pop
#endif
