#!/usr/bin/env bash
# The batched decode step's many-vector block products (lk_matmul_*, AVX-512) with rows taken
# two at a time against the same kernels one row at a time (a copy of simd_avx512.c built with
# LK_MM_PAIR_MIN_VECTORS past any vector count, its symbols renamed), on one thread, for
# SmolLM2-135M's Q4_1 shapes and its Q8_0 head slice, random blocks. Prints per shape and vector
# count the median of 15 alternating timings of each in µs and their ratio, then peak RSS.
# The two give the same bits (BlockMatmulTests.testRowPairsEqualOneRowAtATimeBitForBit).
# Usage: scripts/bench/matmul_pair_tiles.sh [vectors ...]   (default 2 4 8 12 16)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
k="$root/Sources/CKernels"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
types="q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k"
clang -O2 -I"$k/include" -I"$k" -DLK_MM_PAIR_MIN_VECTORS=1000000 -c "$k/simd_avx512.c" -o "$work/onerow.o"
renames=() keep="$work/keep.txt"
for t in $types; do renames+=(--redefine-sym "lk_matmul_${t}_f32_avx512=onerow_matmul_${t}"); echo "onerow_matmul_${t}"; done > "$keep"
objcopy "${renames[@]}" "$work/onerow.o" "$work/onerow-renamed.o"
objcopy --keep-global-symbols="$keep" "$work/onerow-renamed.o" "$work/onerow-only.o"
cat > "$work/bench.c" <<'C'
#include "CKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
typedef void (*matmul)(const void *, size_t, size_t, const float *, size_t, size_t, float *, size_t);
void lk_matmul_q8_0_f32_avx512(const void *, size_t, size_t, const float *, size_t, size_t, float *, size_t);
void lk_matmul_q4_1_f32_avx512(const void *, size_t, size_t, const float *, size_t, size_t, float *, size_t);
void onerow_matmul_q8_0(const void *, size_t, size_t, const float *, size_t, size_t, float *, size_t);
void onerow_matmul_q4_1(const void *, size_t, size_t, const float *, size_t, size_t, float *, size_t);
static uint64_t state = 1;
static uint32_t next(void) { state = state * 6364136223846793005ull + 1442695040888963407ull; return (uint32_t)(state >> 33); }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
int main(int argc, char **argv) {
    if (lk_isa_detected() < LK_ISA_AVX512) { printf("no AVX-512 here: both shapes are the one-row kernel\n"); return 0; }
    struct { const char *type; int bytes, rows, cols; matmul pairs, onerow; } shapes[] = {
        {"q4_1", 20, 1536, 576, lk_matmul_q4_1_f32_avx512, onerow_matmul_q4_1},   // gate/up
        {"q4_1", 20, 576, 1536, lk_matmul_q4_1_f32_avx512, onerow_matmul_q4_1},   // down
        {"q8_0", 34, 12288, 576, lk_matmul_q8_0_f32_avx512, onerow_matmul_q8_0},  // a quarter of the head
    };
    printf("%-5s %-11s %7s %12s %12s %8s\n", "type", "rows×cols", "vectors", "one-row µs", "pairs µs", "speed-up");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int rows = shapes[s].rows, cols = shapes[s].cols, count = cols / 32, bytes = shapes[s].bytes;
        unsigned char *w = malloc((size_t)rows * count * bytes);
        for (size_t i = 0; i < (size_t)rows * count * bytes; i++) w[i] = (unsigned char)next();
        for (size_t b = 0; b < (size_t)rows * count; b++) {  // finite half scales ≈ 1e-3
            w[bytes * b + 1] = 0x14;
            if (bytes == 20) w[bytes * b + 3] = 0x94;
        }
        for (int a = 1; a < argc; a++) {
            const int n = atoi(argv[a]);
            float *x = malloc(sizeof(float) * n * cols), *y = malloc(sizeof(float) * n * rows);
            for (int i = 0; i < n * cols; i++) x[i] = (float)(next() % 2001) / 1000.0f - 1.0f;
            double one[15], two[15];
            for (int t = 0; t < 15; t++) {
                double t0 = now();
                shapes[s].onerow(w, rows, count, x, n, cols, y, rows);
                double t1 = now();
                shapes[s].pairs(w, rows, count, x, n, cols, y, rows);
                double t2 = now();
                one[t] = t1 - t0; two[t] = t2 - t1;
            }
            qsort(one, 15, sizeof(double), cmp); qsort(two, 15, sizeof(double), cmp);
            printf("%-5s %5d×%-5d %7d %12.1f %12.1f %8.2f\n", shapes[s].type, rows, cols, n, one[7], two[7], one[7] / two[7]);
            free(x); free(y);
        }
        free(w);
    }
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    printf("peak RSS %.1f MiB\n", u.ru_maxrss / 1024.0);
    return 0;
}
C
clang -O2 -I"$k/include" -I"$k" -o "$work/bench" "$work/bench.c" "$k"/*.c "$work/onerow-only.o" -lm
if [ $# -eq 0 ]; then set -- 2 4 8 12 16; fi
"$work/bench" "$@"
