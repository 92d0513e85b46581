// Temporary plain-C stand-in for the kernel API until the SIMD implementation lands.
#include "CKernels.h"
#include <math.h>
lk_isa lk_isa_detected(void) { return LK_ISA_SCALAR; }
lk_isa lk_isa_active(void) { return LK_ISA_SCALAR; }
lk_isa lk_isa_set_limit(lk_isa level) { (void)level; return LK_ISA_SCALAR; }
const char *lk_isa_name(lk_isa level) { return level == LK_ISA_AVX512 ? "avx512" : level == LK_ISA_AVX2 ? "avx2" : "scalar"; }
float lk_max_f32_scalar(const float *x, size_t n) { float m = -INFINITY; for (size_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m; return m; }
float lk_max_f32(const float *x, size_t n) { return lk_max_f32_scalar(x, n); }
float lk_dot_f32_scalar(const float *a, const float *b, size_t n) { float s = 0; for (size_t i = 0; i < n; i++) s += a[i] * b[i]; return s; }
float lk_dot_f32(const float *a, const float *b, size_t n) { return lk_dot_f32_scalar(a, b, n); }
float lk_exp_shift_sum_f32_scalar(const float *x, float shift, float *out, size_t n) { float s = 0; for (size_t i = 0; i < n; i++) { out[i] = expf(x[i] - shift); s += out[i]; } return s; }
float lk_exp_shift_sum_f32(const float *x, float shift, float *out, size_t n) { return lk_exp_shift_sum_f32_scalar(x, shift, out, n); }
static float sig(float x) { return 1.0f / (1.0f + expf(-x)); }
void lk_silu_f32_scalar(const float *x, float *out, size_t n) { for (size_t i = 0; i < n; i++) out[i] = x[i] * sig(x[i]); }
void lk_silu_f32(const float *x, float *out, size_t n) { lk_silu_f32_scalar(x, out, n); }
void lk_silu_backward_f32_scalar(const float *x, const float *dout, float *dx, size_t n) { for (size_t i = 0; i < n; i++) { float s = sig(x[i]); dx[i] += dout[i] * s * (1 + x[i] * (1 - s)); } }
void lk_silu_backward_f32(const float *x, const float *dout, float *dx, size_t n) { lk_silu_backward_f32_scalar(x, dout, dx, n); }
void lk_gelu_tanh_f32_scalar(const float *x, float *out, size_t n) { for (size_t i = 0; i < n; i++) { float v = x[i]; out[i] = 0.5f * v * (1 + tanhf(0.7978845608f * (v + 0.044715f * v * v * v))); } }
void lk_gelu_tanh_f32(const float *x, float *out, size_t n) { lk_gelu_tanh_f32_scalar(x, out, n); }
void lk_gelu_tanh_backward_f32_scalar(const float *x, const float *dout, float *dx, size_t n) { for (size_t i = 0; i < n; i++) { float v = x[i]; float u = 0.7978845608f * (v + 0.044715f * v * v * v); float t = tanhf(u); dx[i] += dout[i] * (0.5f * (1 + t) + 0.5f * v * (1 - t * t) * 0.7978845608f * (1 + 3 * 0.044715f * v * v)); } }
void lk_gelu_tanh_backward_f32(const float *x, const float *dout, float *dx, size_t n) { lk_gelu_tanh_backward_f32_scalar(x, dout, dx, n); }
void lk_swiglu_f32_scalar(const float *g, const float *u, float *out, size_t n) { for (size_t i = 0; i < n; i++) out[i] = g[i] * sig(g[i]) * u[i]; }
void lk_swiglu_f32(const float *g, const float *u, float *out, size_t n) { lk_swiglu_f32_scalar(g, u, out, n); }
void lk_swiglu_backward_f32_scalar(const float *g, const float *u, const float *d, float *dg, float *du, size_t n) { for (size_t i = 0; i < n; i++) { float s = sig(g[i]); if (dg) dg[i] += d[i] * u[i] * s * (1 + g[i] * (1 - s)); if (du) du[i] += d[i] * g[i] * s; } }
void lk_swiglu_backward_f32(const float *g, const float *u, const float *d, float *dg, float *du, size_t n) { lk_swiglu_backward_f32_scalar(g, u, d, dg, du, n); }
