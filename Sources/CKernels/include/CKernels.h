// CKernels: the few hot loops Swift cannot make fast portably.
//
// Every kernel `lk_NAME_f32` dispatches at run time to the widest instruction set the CPU
// has (AVX-512F, AVX2+FMA, or scalar). Its scalar twin `lk_NAME_f32_scalar` is always
// compiled and is the reference the SIMD paths are tested against. Kernels named
// `..._backward_...` ACCUMULATE (+=) into their gradient outputs, like every backward pass
// in the engine. Pointers may not alias unless stated; `n` may be any size, including 0 and
// sizes that are not a multiple of the vector width.
#ifndef LORIKEET_CKERNELS_H
#define LORIKEET_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction-set levels, in increasing order of width.
typedef enum {
    LK_ISA_SCALAR = 0,
    LK_ISA_AVX2 = 1,    // AVX2 + FMA
    LK_ISA_AVX512 = 2,  // AVX-512F
} lk_isa;

/// The widest level this CPU supports (detected once, thread-safe).
lk_isa lk_isa_detected(void);
/// The level kernels currently dispatch to.
lk_isa lk_isa_active(void);
/// Caps dispatch at `level` (clamped to what the CPU supports); returns the level now active.
/// For tests and benchmarks; not meant to be toggled while kernels run on other threads.
lk_isa lk_isa_set_limit(lk_isa level);
/// "scalar", "avx2", "avx512".
const char *lk_isa_name(lk_isa level);

// ---- Reductions -------------------------------------------------------------------------
/// max(x[0..n)); -INFINITY when n == 0. NaN elements are skipped (IEEE maxNum); they still
/// poison any sum they enter, so a NaN logit still yields a NaN loss.
float lk_max_f32(const float *x, size_t n);
float lk_max_f32_scalar(const float *x, size_t n);
/// sum(a[i] * b[i]), accumulated in float lanes.
float lk_dot_f32(const float *a, const float *b, size_t n);
float lk_dot_f32_scalar(const float *a, const float *b, size_t n);

// ---- Softmax building block ------------------------------------------------------------
/// out[i] = exp(x[i] - shift); returns the sum of out. `out` may equal `x`.
/// exp is a Cephes-style polynomial with relative error below 3e-7 (tested on [-87, 80]);
/// results underflow to 0 below about -87.3 and overflow to +inf above about 88.37.
float lk_exp_shift_sum_f32(const float *x, float shift, float *out, size_t n);
float lk_exp_shift_sum_f32_scalar(const float *x, float shift, float *out, size_t n);

// ---- Activations -----------------------------------------------------------------------
/// out = x * sigmoid(x). `out` may equal `x`.
void lk_silu_f32(const float *x, float *out, size_t n);
void lk_silu_f32_scalar(const float *x, float *out, size_t n);
/// dx += dout * d/dx silu(x).
void lk_silu_backward_f32(const float *x, const float *dout, float *dx, size_t n);
void lk_silu_backward_f32_scalar(const float *x, const float *dout, float *dx, size_t n);

/// out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (GELU, tanh approximation).
void lk_gelu_tanh_f32(const float *x, float *out, size_t n);
void lk_gelu_tanh_f32_scalar(const float *x, float *out, size_t n);
/// dx += dout * d/dx gelu_tanh(x).
void lk_gelu_tanh_backward_f32(const float *x, const float *dout, float *dx, size_t n);
void lk_gelu_tanh_backward_f32_scalar(const float *x, const float *dout, float *dx, size_t n);

/// SwiGLU: out = silu(gate) * up.
void lk_swiglu_f32(const float *gate, const float *up, float *out, size_t n);
void lk_swiglu_f32_scalar(const float *gate, const float *up, float *out, size_t n);
/// dgate += dout * up * silu'(gate); dup += dout * silu(gate). Either gradient pointer may be
/// NULL (that input needs no gradient).
void lk_swiglu_backward_f32(const float *gate, const float *up, const float *dout,
                            float *dgate, float *dup, size_t n);
void lk_swiglu_backward_f32_scalar(const float *gate, const float *up, const float *dout,
                                   float *dgate, float *dup, size_t n);

// ---- NF4 decoding -------------------------------------------------------------------
/// out[i] = codebook[code(first + i)] · scales[(first + i)/64 − first/64] for i < n, where
/// code(e) is the high nibble of packed[e/2] for even e and the low nibble for odd e
/// (bitsandbytes' layout, blocks of 64). `scales` holds the decoded scale of every block the
/// range touches. NF4Matrix's Swift loop is the twin.
void lk_decode_nf4_f32(const uint8_t *packed, size_t first, size_t n, const float *codebook,
                       const float *scales, float *out);
void lk_decode_nf4_f32_scalar(const uint8_t *packed, size_t first, size_t n, const float *codebook,
                              const float *scales, float *out);

// ---- Dropout with counter-based masks -------------------------------------------------
/// Element i (counted from `first`) is dropped when the top 24 bits of
/// SplitMix64's output for state seed + (first + i + 1)·0x9E3779B97F4A7C15 are below
/// `threshold` (⌈p·2²⁴⌉): a stateless mask, so any range can be generated on any thread and
/// backward regenerates it instead of storing it.
/// out[i] = dropped ? 0 : x[i]·scale.
void lk_dropout_f32(uint64_t seed, uint64_t first, const float *x, float *out, size_t n, uint32_t threshold, float scale);
void lk_dropout_f32_scalar(uint64_t seed, uint64_t first, const float *x, float *out, size_t n, uint32_t threshold, float scale);
/// dx[i] += dropped ? 0 : dy[i]·scale, with the same mask.
void lk_dropout_backward_f32(uint64_t seed, uint64_t first, const float *dy, float *dx, size_t n, uint32_t threshold, float scale);
void lk_dropout_backward_f32_scalar(uint64_t seed, uint64_t first, const float *dy, float *dx, size_t n, uint32_t threshold, float scale);

// ---- ggml block decoding ---------------------------------------------------------------
/// Decode `blocks` consecutive ggml blocks of 32 weights (Q8_0: 34 bytes, Q4_0: 18, Q4_1: 20)
/// into 32·blocks floats, with ggml's layout and arithmetic (d·q, or d·q + m for Q4_1). Swift's
/// GGUFDequantizer is the naive twin these are tested against. Plain C the compiler vectorises,
/// compiled once per ISA level (dequant_body.h).
void lk_dequant_q8_0(const void *blocks, size_t count, float *out);
void lk_dequant_q4_0(const void *blocks, size_t count, float *out);
void lk_dequant_q4_1(const void *blocks, size_t count, float *out);

/// The same for Q5_0 (22 bytes: d, 32 high bits, 16 bytes of nibbles; (q − 16)·d) and Q5_1
/// (24 bytes: d, m, high bits, nibbles; q·d + m), 32 weights a block, and for the K-quants,
/// super-blocks of 256 weights: Q4_K (144 bytes), Q5_K (176), Q6_K (210), decoded as
/// (d·scale)·q − dmin·min with 6-bit scales/mins per 32 weights (Q4_K, Q5_K) or
/// (d·scale)·(q − 32) with a signed 8-bit scale per 16 weights (Q6_K). Values equal the `gguf`
/// package's dequantization bit for bit (tests read fixtures it wrote); GGUFDequantizer's
/// Swift loop is the naive twin.
void lk_dequant_q5_0(const void *blocks, size_t count, float *out);
void lk_dequant_q5_1(const void *blocks, size_t count, float *out);
void lk_dequant_q4_k(const void *blocks, size_t count, float *out);
void lk_dequant_q5_k(const void *blocks, size_t count, float *out);
void lk_dequant_q6_k(const void *blocks, size_t count, float *out);
/// The decoders' twins: the same C compiled without SIMD targets. The functions above run the
/// AVX-512 or AVX2 compilation of that code (whichever the ISA level allows), with float
/// contraction off in all three, so every variant writes the same bits; tests compare them.
void lk_dequant_q8_0_scalar(const void *blocks, size_t count, float *out);
void lk_dequant_q4_0_scalar(const void *blocks, size_t count, float *out);
void lk_dequant_q4_1_scalar(const void *blocks, size_t count, float *out);
void lk_dequant_q5_0_scalar(const void *blocks, size_t count, float *out);
void lk_dequant_q5_1_scalar(const void *blocks, size_t count, float *out);
void lk_dequant_q4_k_scalar(const void *blocks, size_t count, float *out);
void lk_dequant_q5_k_scalar(const void *blocks, size_t count, float *out);
void lk_dequant_q6_k_scalar(const void *blocks, size_t count, float *out);

// ---- ggml block encoding ---------------------------------------------------------------
/// Encode `count` blocks (32 values for Q8_0/Q4_0/Q4_1/Q5_0/Q5_1, 256 for Q4_K/Q5_K/Q6_K) of x
/// into ggml's block layout, writing exactly the bytes ggml's reference quantizers
/// (`quantize_row_*_ref`, what llama.cpp's quantizer uses without an importance matrix) write:
/// same searches (make_qkx2_quants for Q4_K/Q5_K, make_qx_quants for Q6_K), same f32
/// evaluation order, same round-to-nearest-even f16 scales. Each block depends on its own
/// values only, so callers may split a tensor's blocks between threads (Formats' GGMLEncoder
/// does, and its tests compare that against one call). Fixtures from ggml itself are the oracle.
void lk_quantize_q8_0(const float *x, size_t count, void *out);
void lk_quantize_q4_0(const float *x, size_t count, void *out);
void lk_quantize_q4_1(const float *x, size_t count, void *out);
void lk_quantize_q5_0(const float *x, size_t count, void *out);
void lk_quantize_q5_1(const float *x, size_t count, void *out);
void lk_quantize_q4_k(const float *x, size_t count, void *out);
void lk_quantize_q5_k(const float *x, size_t count, void *out);
void lk_quantize_q6_k(const float *x, size_t count, void *out);
/// x as an IEEE half (bits), rounded to nearest even as ggml's GGML_FP32_TO_FP16.
uint16_t lk_f32_to_f16(float x);

// ---- Fused dot products over ggml blocks ------------------------------------------------
/// sum over `count` blocks of the decoded weights times x[0 ..< 32·count], without writing the
/// decoded weights anywhere: the decode-time matrix-vector product reads each 4- or 8-bit
/// weight once. Within a block the integer codes meet x first and the block scale after
/// (d·Σq·x + m·Σx for Q4_1), so results differ from decode-then-dot by float rounding only.
/// The scalar twins are the reference the SIMD paths are tested against.
float lk_dot_q8_0_f32(const void *blocks, const float *x, size_t count);
float lk_dot_q8_0_f32_scalar(const void *blocks, const float *x, size_t count);
float lk_dot_q4_0_f32(const void *blocks, const float *x, size_t count);
float lk_dot_q4_0_f32_scalar(const void *blocks, const float *x, size_t count);
float lk_dot_q4_1_f32(const void *blocks, const float *x, size_t count);
float lk_dot_q4_1_f32_scalar(const void *blocks, const float *x, size_t count);
/// y[r] = (row r) · x for `rows` consecutive rows of `count` blocks each (x: [32·count],
/// y: [rows]): the decode-time matrix-vector product, one call per run of rows so that what
/// does not depend on the row (Q4_1's per-block Σx) is computed once. Same arithmetic as the
/// row dots above up to float reassociation; the `_scalar` twins call the row twins row by row.
void lk_matvec_q8_0_f32(const void *blocks, size_t rows, size_t count, const float *x, float *y);
void lk_matvec_q8_0_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, float *y);
void lk_matvec_q4_0_f32(const void *blocks, size_t rows, size_t count, const float *x, float *y);
void lk_matvec_q4_0_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, float *y);
void lk_matvec_q4_1_f32(const void *blocks, size_t rows, size_t count, const float *x, float *y);
void lk_matvec_q4_1_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, float *y);
/// The decode-time matrix-vector products of Q5_0, Q5_1 (`count` blocks of 32 per row) and of
/// the K-quants (`count` super-blocks of 256 per row; x: [256·count]). Within a sub-block the
/// codes meet x first, then its scale; Q5_1/Q4_K/Q5_K's minimum terms use Σx per 32 weights,
/// summed once per call for all rows. The `_scalar` twins evaluate each row directly
/// (scale·Σq·x − min·Σx per sub-block), the reference the SIMD paths are tested against.
void lk_matvec_q5_0_f32(const void *blocks, size_t rows, size_t count, const float *x, float *y);
void lk_matvec_q5_0_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, float *y);
void lk_matvec_q5_1_f32(const void *blocks, size_t rows, size_t count, const float *x, float *y);
void lk_matvec_q5_1_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, float *y);
void lk_matvec_q4_k_f32(const void *blocks, size_t rows, size_t count, const float *x, float *y);
void lk_matvec_q4_k_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, float *y);
void lk_matvec_q5_k_f32(const void *blocks, size_t rows, size_t count, const float *x, float *y);
void lk_matvec_q5_k_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, float *y);
void lk_matvec_q6_k_f32(const void *blocks, size_t rows, size_t count, const float *x, float *y);
void lk_matvec_q6_k_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, float *y);
/// sum(h[i] · x[i]) over `n` IEEE half-precision weights (F16 tensors), converted exactly.
float lk_dot_f16_f32(const void *h, const float *x, size_t n);
float lk_dot_f16_f32_scalar(const void *h, const float *x, size_t n);

// ---- bf16 GEMM with f32 accumulation ---------------------------------------------------
// C[M, N] = A[M, K] · op(B) + beta·C, op(B) = B[N, K]ᵀ (trans_b, a linear layer's forward
// x·Wᵀ) or B[K, N] (its input gradient dy·W). A and B are given in f32 and rounded to bf16
// (round to nearest even) while packing; products are exact in f32 and summed in f32. On CPUs
// with AVX512_BF16 the micro-kernel is `vdpbf16ps`, which flushes bf16 subnormal inputs and
// f32 subnormal results to zero; elsewhere a portable micro-kernel runs on the same packing.
//
// Packed layouts (u32 = two bf16, the even-K element in the low half; odd K is padded with 0):
// A: panels of LK_BF16_MR rows, [⌈M/MR⌉][⌈K/2⌉][MR] u32, rows past M are 0.
// B: panels of LK_BF16_NR columns of op(B), [⌈N/NR⌉][⌈K/2⌉][NR] u32, columns past N are 0.
// Packing and the product take panel ranges so that callers can split them over threads;
// ranges must not overlap between threads running at the same time. beta == 0 never reads C.
#define LK_BF16_MR 8
#define LK_BF16_NR 48

/// x rounded to the nearest bf16 (ties to even; NaN stays NaN, overflow goes to ±inf).
float lk_bf16_round(float x);
/// 1 when the `vdpbf16ps` micro-kernel is in use (AVX512_BF16 and the ISA limit allows AVX-512).
int lk_gemm_bf16_native(void);
/// u32 words of the packed A for [m, k] and of the packed B for n columns and k.
size_t lk_gemm_bf16_packed_a_words(size_t m, size_t k);
size_t lk_gemm_bf16_packed_b_words(size_t n, size_t k);
/// Packs row panels [panel_begin, panel_end) of A[m, k] (row stride lda).
void lk_gemm_bf16_pack_a(size_t m, size_t k, const float *a, size_t lda,
                         size_t panel_begin, size_t panel_end, uint32_t *packed);
/// Packs column panels [panel_begin, panel_end) of op(B) [k, n]: B[n, k] when trans_b, else B[k, n].
void lk_gemm_bf16_pack_b(int trans_b, size_t n, size_t k, const float *b, size_t ldb,
                         size_t panel_begin, size_t panel_end, uint32_t *packed);
/// The packing's scalar twins. The two above dispatch (AVX-512F where the ISA level allows) and
/// write exactly the same words.
void lk_gemm_bf16_pack_a_scalar(size_t m, size_t k, const float *a, size_t lda,
                                size_t panel_begin, size_t panel_end, uint32_t *packed);
void lk_gemm_bf16_pack_b_scalar(int trans_b, size_t n, size_t k, const float *b, size_t ldb,
                                size_t panel_begin, size_t panel_end, uint32_t *packed);
/// Rows of C in A's row panels [panel_begin, panel_end): C = packed A · packed B + beta·C.
void lk_gemm_bf16_packed(size_t m, size_t n, size_t k, const uint32_t *packed_a, const uint32_t *packed_b,
                         size_t panel_begin, size_t panel_end, float beta, float *c, size_t ldc);
/// The whole product on the calling thread (packs into memory it allocates and frees).
/// Returns 0, or -1 when that memory could not be allocated (C is then untouched).
int lk_gemm_bf16(int trans_b, size_t m, size_t n, size_t k, const float *a, size_t lda,
                 const float *b, size_t ldb, float beta, float *c, size_t ldc);
/// The naive twin: the same bf16-rounded products summed in double, no packing.
void lk_gemm_bf16_naive(int trans_b, size_t m, size_t n, size_t k, const float *a, size_t lda,
                        const float *b, size_t ldb, float beta, float *c, size_t ldc);

// ---- Many vectors through one matrix of ggml blocks --------------------------------------
// The batched decode step's product: several sequences' rows of x against the same quantized
// weight. y[v·ldy + r] = row r · x[v·ldx …] for v < nvec and r < rows, where `blocks` holds
// `rows` consecutive rows of `count` blocks (32 weights; 256 for the K-quants) and each vector
// x[v] has as many floats as a row has weights. Each block is decoded in registers and meets
// a tile of vectors (16 with AVX-512, 8 with AVX2) before the next block: no f32 weights are
// written, unlike decode-then-GEMM, which is what makes a few vectors cheap. Results equal
// the matrix-vector kernels' up to float reassociation. The `_scalar` twins run the
// `lk_matvec_*_scalar` twins vector by vector.
void lk_matmul_q8_0_f32(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, float *y, size_t ldy);
void lk_matmul_q8_0_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, float *y, size_t ldy);
void lk_matmul_q4_0_f32(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, float *y, size_t ldy);
void lk_matmul_q4_0_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, float *y, size_t ldy);
void lk_matmul_q4_1_f32(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, float *y, size_t ldy);
void lk_matmul_q4_1_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, float *y, size_t ldy);
void lk_matmul_q5_0_f32(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, float *y, size_t ldy);
void lk_matmul_q5_0_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, float *y, size_t ldy);
void lk_matmul_q5_1_f32(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, float *y, size_t ldy);
void lk_matmul_q5_1_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, float *y, size_t ldy);
void lk_matmul_q4_k_f32(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, float *y, size_t ldy);
void lk_matmul_q4_k_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, float *y, size_t ldy);
void lk_matmul_q5_k_f32(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, float *y, size_t ldy);
void lk_matmul_q5_k_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, float *y, size_t ldy);
void lk_matmul_q6_k_f32(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, float *y, size_t ldy);
void lk_matmul_q6_k_f32_scalar(const void *blocks, size_t rows, size_t count, const float *x, size_t nvec, size_t ldx, float *y, size_t ldy);

// ---- Block products over 8-bit activations ------------------------------------------------
// The decode-time products of Q5_0, Q4_K and Q6_K weights (the bulk of a Q4_K_M file) with x
// rounded to 8 bits first, as llama.cpp does: each 32 values of x become int8 codes q = round(x/d)
// (to nearest, ties to even) with d = max|x|/127 kept in float, once per product; the weights'
// codes then meet them in exact integer dots (4 bytes per int32 lane), so a weight is never
// turned into a float. Only the per-block scaling is float: each block adds scale·lane for
// its 8 lanes into one of two 8-lane accumulators (even and odd blocks), which are summed in one
// fixed order at the end, so every instruction set and the scalar twins give the same bits, and
// the many-vector kernels give each vector exactly what the one-vector kernel gives. Against the
// f32 kernels the results differ by x's rounding: relative error ≈ 1e-3 of Σ|w·x|.
/// Bytes of a quantized vector of n values (n a multiple of 32): int8 codes [n], float
/// scales [n/32], int32 code sums [n/32], int32 lane offsets [n/32][8] (2n + n/4 bytes).
size_t lk_q8_bytes(size_t n);
/// x [n] → out (lk_q8_bytes(n) bytes, 4-byte aligned).
void lk_quantize_q8(const float *x, size_t n, void *out);
void lk_quantize_q8_scalar(const float *x, size_t n, void *out);
/// y[r] = row r · x for `rows` consecutive rows of `count` blocks (32 values; 256 for the
/// K-quants), xq being x [32·count or 256·count] quantized by lk_quantize_q8.
void lk_matvec_q5_0_q8(const void *blocks, size_t rows, size_t count, const void *xq, float *y);
void lk_matvec_q5_0_q8_scalar(const void *blocks, size_t rows, size_t count, const void *xq, float *y);
void lk_matvec_q4_k_q8(const void *blocks, size_t rows, size_t count, const void *xq, float *y);
void lk_matvec_q4_k_q8_scalar(const void *blocks, size_t rows, size_t count, const void *xq, float *y);
void lk_matvec_q6_k_q8(const void *blocks, size_t rows, size_t count, const void *xq, float *y);
void lk_matvec_q6_k_q8_scalar(const void *blocks, size_t rows, size_t count, const void *xq, float *y);
/// y[v·ldy + r] = row r · x_v for nvec quantized vectors stored back to back in xq (each
/// lk_q8_bytes of a row's length): each block is decoded once for a few vectors. Bit-equal to
/// lk_matvec_*_q8 vector by vector, which the `_scalar` twins run.
void lk_matmul_q5_0_q8(const void *blocks, size_t rows, size_t count, const void *xq, size_t nvec, float *y, size_t ldy);
void lk_matmul_q5_0_q8_scalar(const void *blocks, size_t rows, size_t count, const void *xq, size_t nvec, float *y, size_t ldy);
void lk_matmul_q4_k_q8(const void *blocks, size_t rows, size_t count, const void *xq, size_t nvec, float *y, size_t ldy);
void lk_matmul_q4_k_q8_scalar(const void *blocks, size_t rows, size_t count, const void *xq, size_t nvec, float *y, size_t ldy);
void lk_matmul_q6_k_q8(const void *blocks, size_t rows, size_t count, const void *xq, size_t nvec, float *y, size_t ldy);
void lk_matmul_q6_k_q8_scalar(const void *blocks, size_t rows, size_t count, const void *xq, size_t nvec, float *y, size_t ldy);

#ifdef __cplusplus
}
#endif
#endif
