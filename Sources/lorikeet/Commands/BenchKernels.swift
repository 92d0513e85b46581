import ArgumentParser
import CKernels
import Foundation
import TensorCore

/// Each C kernel at the widest instruction set against its scalar twin, same data, same run.
struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "C kernels: SIMD path vs scalar twin (elements/ns, medians, one thread).")

    @Option(help: "Elements per call.") var count = 1 << 20
    @Option(help: "Timed repetitions per kernel and path (interleaved).") var repeats = 11

    func run() throws {
        guard count > 0, repeats > 0 else { throw ValidationError("--count and --repeats must be positive") }
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
        print(BenchTiming.peakMemoryLine)
    }


}
