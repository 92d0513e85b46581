#!/usr/bin/env bash
# Where the batched decode step's fused many-vector product (lk_matmul_*) stops beating
# decode-then-GEMM (lk_dequant_* of the whole matrix + OpenBLAS sgemm, what sharedProduct
# does above DecoderModel.fusedProductRows), on one thread, for SmolLM2-135M's Q4_1 shapes
# (576 → 1536 gate/up rows, 1536 → 576 down rows) with random blocks. Prints, per row count n,
# the median of 15 alternating timings of each path in µs and their ratio.
# Usage: scripts/bench/fused_product_crossover.sh [n ...]   (default 2 4 8 12 16 24 32 48 64)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/bench.c" <<'C'
#include "CKernels.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static uint64_t state = 1;
static uint32_t next(void) { state = state * 6364136223846793005ull + 1442695040888963407ull; return (uint32_t)(state >> 33); }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
int main(int argc, char **argv) {
    openblas_set_num_threads(1);
    const int shapes[2][2] = {{1536, 576}, {576, 1536}};  // rows, columns
    printf("%-6s %-11s %12s %12s %8s\n", "n", "rows×cols", "fused µs", "gemm µs", "gemm/fused");
    for (int a = 1; a < argc; a++) {
        const int n = atoi(argv[a]);
        for (int s = 0; s < 2; s++) {
            const int rows = shapes[s][0], cols = shapes[s][1], count = cols / 32;
            unsigned char *w = malloc((size_t)rows * count * 20);
            for (size_t i = 0; i < (size_t)rows * count * 20; i++) w[i] = (unsigned char)next();
            for (size_t b = 0; b < (size_t)rows * count; b++) {  // finite half scales ≈ 1e-3
                w[20 * b + 1] = 0x14; w[20 * b + 3] = 0x94;
            }
            float *x = malloc(sizeof(float) * n * cols), *y = malloc(sizeof(float) * n * rows);
            float *decoded = malloc(sizeof(float) * rows * cols);
            for (int i = 0; i < n * cols; i++) x[i] = (float)(next() % 2001) / 1000.0f - 1.0f;
            double fused[15], gemm[15];
            for (int t = 0; t < 15; t++) {
                double t0 = now();
                lk_matmul_q4_1_f32(w, rows, count, x, n, cols, y, rows);
                double t1 = now();
                lk_dequant_q4_1(w, (size_t)rows * count, decoded);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, rows, cols, 1.0f, x, cols, decoded, cols, 0.0f, y, rows);
                double t2 = now();
                fused[t] = t1 - t0; gemm[t] = t2 - t1;
            }
            qsort(fused, 15, sizeof(double), cmp); qsort(gemm, 15, sizeof(double), cmp);
            printf("%-6d %4d×%-6d %12.1f %12.1f %8.2f\n", n, rows, cols, fused[7], gemm[7], gemm[7] / fused[7]);
            free(w); free(x); free(y); free(decoded);
        }
    }
    return 0;
}
C
k="$root/Sources/CKernels"
clang -O2 -I"$k/include" -I/usr/include/x86_64-linux-gnu -o "$work/bench" "$work/bench.c" "$k"/*.c -lopenblas -lm
if [ $# -eq 0 ]; then set -- 2 4 8 12 16 24 32 48 64; fi
"$work/bench" "$@"
