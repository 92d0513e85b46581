// The ggml block decoders compiled for AVX-512 (dequant_body.h; dispatch in dequant.c).
#if defined(__x86_64__)
#pragma clang fp contract(off)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"))), apply_to = function)
#define LK_DQ(name) name##_avx512
#include "dequant_body.h"
#pragma clang attribute pop
#endif
