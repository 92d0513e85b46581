// The 8-bit-activation block products for AVX2 (vpmaddubsw + vpmaddwd integer dots).
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define LK_Q8_SUFFIX avx2
#include "q8dot_body.h"
#pragma clang attribute pop
#endif
