// The 8-bit-activation block products for AVX512-VNNI (vpdpbusd on 256-bit registers, and
// AVX512BW's byte masks for Q5_0's fifth bits).
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))), apply_to = function)
#define LK_Q8_SUFFIX vnni
#define LK_Q8_VNNI 1
#include "q8dot_body.h"
#pragma clang attribute pop
#endif
