import ArgumentParser
import CKernels
import Foundation
import TensorCore

/// Each C kernel at the widest instruction set against its scalar twin, same data, same run.
struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "C kernels: SIMD path vs scalar twin (elements/ns, medians, one thread); bf16 GEMM vs cblas_sgemm.",
        discussion: """
        The bf16 GEMM table times the frozen base's products in a training step (forward \
        x·Wᵀ and input gradient dy·W, M tokens, SmolLM2-135M's four linear shapes) against \
        cblas_sgemm on the same data, interleaved, on all threads: GFLOP/s of medians. \
        Example: lorikeet bench kernels --only gemm --gemm-rows 1024
        """)

    @Option(help: "Elements per call.") var count = 1 << 20
    @Option(help: "Timed repetitions per kernel and path (interleaved).") var repeats = 11
    @Option(help: "Which tables: all, elementwise, gemm.") var only = "all"
    @Option(help: "Rows (tokens) M of the GEMM shapes.") var gemmRows = 1024

    func run() throws {
        guard count > 0, repeats > 0, gemmRows > 0 else { throw ValidationError("--count, --repeats and --gemm-rows must be positive") }
        guard ["all", "elementwise", "gemm"].contains(only) else { throw ValidationError("--only is all, elementwise or gemm") }
        if only != "gemm" { elementwise() }
        if only != "elementwise" { bf16Gemm() }
        print(BenchTiming.peakMemoryLine)
    }

    func elementwise() {
        let n = count
        var rng = RandomGenerator(seed: 1)
        let x = (0..<n).map { _ in 8 * rng.nextUniform() - 4 }, y = (0..<n).map { _ in rng.nextUniform() }
        var out = [Float](repeating: 0, count: n), grad = [Float](repeating: 0, count: n)
        let kernels: [(String, () -> Void)] = [
            ("max", { _ = lk_max_f32(x, n) }),
            ("dot", { _ = lk_dot_f32(x, y, n) }),
            ("exp_shift_sum", { _ = lk_exp_shift_sum_f32(x, 4, &out, n) }),
            ("silu", { lk_silu_f32(x, &out, n) }),
            ("silu_backward", { lk_silu_backward_f32(x, y, &grad, n) }),
            ("gelu_tanh", { lk_gelu_tanh_f32(x, &out, n) }),
            ("gelu_tanh_backward", { lk_gelu_tanh_backward_f32(x, y, &grad, n) }),
            ("swiglu", { lk_swiglu_f32(x, y, &out, n) }),
            ("swiglu_backward", { lk_swiglu_backward_f32(x, y, y, &grad, &out, n) }),
        ]
        let widest = lk_isa_detected()
        defer { _ = lk_isa_set_limit(LK_ISA_AVX512) }
        print("widest ISA: \(String(cString: lk_isa_name(widest))), \(n) elements, median of \(repeats)")
        print("kernel".padding(toLength: 20, withPad: " ", startingAt: 0) + "  scalar el/ns    simd el/ns   simd/scalar")
        for (name, body) in kernels {
            var scalar: [Double] = [], simd: [Double] = []
            for _ in 0..<repeats {
                _ = lk_isa_set_limit(LK_ISA_SCALAR); scalar.append(BenchTiming.seconds(body))
                _ = lk_isa_set_limit(widest); simd.append(BenchTiming.seconds(body))
            }
            let (s, v) = (Double(n) / BenchTiming.median(scalar) / 1e9, Double(n) / BenchTiming.median(simd) / 1e9)
            print(name.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: "  %11.2f  %11.2f  %10.1f×", s, v, v / s))
        }
    }

    /// bf16 GEMM vs cblas_sgemm on the training step's frozen-base products.
    func bf16Gemm() {
        let m = gemmRows
        // (in, out) of q/o, k/v, gate/up and down projections of SmolLM2-135M.
        let linears = [(576, 1536), (1536, 576), (576, 576), (576, 192)]
        print("bf16 GEMM (\(BF16GEMM.isNative ? "vdpbf16ps" : "portable kernel")) vs cblas_sgemm, \(Parallel.threadCount) threads, M = \(m), median of \(repeats)")
        print("product".padding(toLength: 34, withPad: " ", startingAt: 0) + "  sgemm GFLOP/s  bf16 GFLOP/s  bf16/sgemm")
        let scratch = BF16GEMM()
        var ratios: [Double] = []
        for (input, output) in linears {
            var rng = RandomGenerator(seed: 7)
            let w = Tensor(uniform: [output, input], rng: &rng)  // [O, I]
            for forward in [true, false] {
                // forward: y[M, O] = x[M, I] · Wᵀ; input gradient: dx[M, I] = dy[M, O] · W.
                let (n, k) = forward ? (output, input) : (input, output)
                let a = Tensor(uniform: [m, k], rng: &rng)
                let c = TensorStorage(count: m * n)
                func sgemm() { gemm(transA: false, transB: forward, m: m, n: n, k: k, a: a.storage.base, lda: k,
                                    b: w.storage.base, ldb: input, beta: forward ? 0 : 1, c: c.base, ldc: n) }
                func bf16() { scratch.multiply(transB: forward, m: m, n: n, k: k, a: a.storage.base, lda: k,
                                               b: w.storage.base, ldb: input, beta: forward ? 0 : 1, c: c.base, ldc: n) }
                sgemm(); bf16()  // warm-up: threads awake, scratch allocated, pages touched
                var sgemmTimes: [Double] = [], bf16Times: [Double] = []
                for rep in 0..<repeats {
                    if rep % 2 == 0 { sgemmTimes.append(BenchTiming.seconds(sgemm)); bf16Times.append(BenchTiming.seconds(bf16)) }
                    else { bf16Times.append(BenchTiming.seconds(bf16)); sgemmTimes.append(BenchTiming.seconds(sgemm)) }
                }
                let flops = 2.0 * Double(m) * Double(n) * Double(k)
                let (s, b) = (flops / BenchTiming.median(sgemmTimes) / 1e9, flops / BenchTiming.median(bf16Times) / 1e9)
                ratios.append(b / s)
                let label = forward ? "[\(input)→\(output)] x·Wᵀ \(m)×\(k)×\(n)" : "[\(input)→\(output)] dy·W \(m)×\(k)×\(n)"
                print(label.padding(toLength: 34, withPad: " ", startingAt: 0) + String(format: "  %13.1f  %12.1f  %9.2f×", s, b, b / s))
            }
        }
        let geomean = exp(ratios.map { log($0) }.reduce(0, +) / Double(ratios.count))
        print(String(format: "geometric mean bf16/sgemm: %.2f×", geomean))
    }


}
