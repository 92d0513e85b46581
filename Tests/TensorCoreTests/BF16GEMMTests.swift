import CKernels
import TensorCore
import TestSupport
import XCTest

/// The threaded, scratch-reusing wrapper against CKernels' naive twin: several chunks of row
/// panels, a packed A reused across B panels written into column slices of one C.
final class BF16GEMMWrapperTests: XCTestCase {
    func testThreadedProductMatchesNaiveTwinAndReusesPackedA() {
        var rng = RandomGenerator(seed: 3)
        let (m, k, o) = (203, 77, 130)  // 26 row panels → several chunks; odd K
        let x = Tensor(uniform: [m, k], rng: &rng), w = Tensor(uniform: [o, k], rng: &rng)  // [M, K], [O, K]
        let gemm = BF16GEMM()
        // Forward in two weight panels (rows 0..<64 and 64..<130) sharing one packed x.
        let y = TensorStorage(count: m * o)  // [M, O]
        gemm.packA(m: m, k: k, a: x.storage.base, lda: k)
        for (r0, rn) in [(0, 64), (64, o - 64)] {
            gemm.multiply(packedA: m, n: rn, transB: true, b: w.storage.base + r0 * k, ldb: k, beta: 0, c: y.base + r0, ldc: o)
        }
        var want = [Float](repeating: 0, count: m * o)
        lk_gemm_bf16_naive(1, m, o, k, x.storage.base, k, w.storage.base, k, 0, &want, o)
        // Input gradient, accumulated: dx += dy · W.
        let dy = Tensor(uniform: [m, o], rng: &rng), dx = Tensor(uniform: [m, k], rng: &rng)
        var wantDx = Array(UnsafeBufferPointer(start: dx.storage.base, count: m * k))
        BF16GEMM.withShared { $0.multiply(transB: false, m: m, n: k, k: o, a: dy.storage.base, lda: o, b: w.storage.base, ldb: k,
                                          beta: 1, c: dx.storage.base, ldc: k) }
        lk_gemm_bf16_naive(0, m, k, o, dy.storage.base, o, w.storage.base, k, 1, &wantDx, k)
        // Values in [-1, 1): |C| ≤ K, and f32 summation of K products errs by at most K·2⁻²⁴·K.
        for (got, expected, kk) in [(Array(UnsafeBufferPointer(start: y.base, count: m * o)), want, k),
                                    (Array(UnsafeBufferPointer(start: dx.storage.base, count: m * k)), wantDx, o)] {
            let tolerance = Float(kk + 4) * 0x1p-24 * Float(kk + 1)
            for i in got.indices where !(abs(got[i] - expected[i]) <= tolerance) {
                return XCTFail("element \(i): \(got[i]) vs naive \(expected[i])")
            }
        }
    }
}
