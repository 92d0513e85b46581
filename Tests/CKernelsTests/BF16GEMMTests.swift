import CKernels
import Foundation
import XCTest

/// The bf16 GEMM (packing, blocking, micro-kernels) against its naive twin, on sizes that are
/// not multiples of the tile (8 × 48) or of the cache blocks (192 pairs of K, 8 column panels).
final class BF16GEMMTests: XCTestCase {
    struct Case { let m: Int, n: Int, k: Int }
    /// k = 385 spans three K blocks with an odd tail; n = 437 spans two column-panel blocks.
    static let cases = [Case(m: 1, n: 1, k: 1), Case(m: 7, n: 5, k: 3), Case(m: 9, n: 49, k: 17),
                        Case(m: 17, n: 97, k: 385), Case(m: 33, n: 437, k: 30), Case(m: 8, n: 48, k: 2)]

    func values(_ n: Int, seed: UInt64, scale: Float = 2) -> [Float] {
        seededValues(n, seed: seed, scale: scale)
    }

    /// The product through the packed API, packing and computing in two halves of the panels
    /// (the way callers split them over threads).
    func packedProduct(transB: Bool, _ s: Case, a: [Float], lda: Int, b: [Float], ldb: Int,
                       beta: Float, c: inout [Float], ldc: Int) {
        var pa = [UInt32](repeating: 0xDEAD_BEEF, count: lk_gemm_bf16_packed_a_words(s.m, s.k))
        var pb = [UInt32](repeating: 0xDEAD_BEEF, count: lk_gemm_bf16_packed_b_words(s.n, s.k))
        let mp = (s.m + Int(LK_BF16_MR) - 1) / Int(LK_BF16_MR), np = (s.n + Int(LK_BF16_NR) - 1) / Int(LK_BF16_NR)
        for (lo, hi) in [(0, mp / 2), (mp / 2, mp)] { lk_gemm_bf16_pack_a(s.m, s.k, a, lda, lo, hi, &pa) }
        for (lo, hi) in [(np / 2, np), (0, np / 2)] { lk_gemm_bf16_pack_b(transB ? 1 : 0, s.n, s.k, b, ldb, lo, hi, &pb) }
        for (lo, hi) in [(mp / 2, mp), (0, mp / 2)] { lk_gemm_bf16_packed(s.m, s.n, s.k, pa, pb, lo, hi, beta, &c, ldc) }
    }

    /// Both micro-kernels (vdpbf16ps where the CPU has it, and the portable one) against the
    /// naive twin, forward (B [N, K]ᵀ) and input-gradient (B [K, N]) forms, beta 0, 1 and 0.5.
    ///
    /// Tolerance: both sum the same exact products (a bf16 × bf16 product fits in f32), the twin
    /// in double and the kernels in f32, which rounds at most K + 3 times along the way (one per
    /// multiply-add, one per K block, one for beta·C). The classic bound for recursive summation
    /// gives |C − C_naive| ≤ (K + 4)·2⁻²⁴·(Σ|a·b| + |beta·C₀|), plus half an ulp of the twin.
    func testPackedKernelsMatchNaiveTwin() {
        defer { _ = lk_isa_set_limit(LK_ISA_AVX512) }
        var kernels: [(String, lk_isa)] = [("portable", LK_ISA_SCALAR)]
        if lk_isa_set_limit(LK_ISA_AVX512) == LK_ISA_AVX512, lk_gemm_bf16_native() == 1 { kernels.append(("vdpbf16ps", LK_ISA_AVX512)) }
        for (name, level) in kernels {
            _ = lk_isa_set_limit(level)
            XCTAssertEqual(lk_gemm_bf16_native() == 1, name == "vdpbf16ps")
            for s in Self.cases {
                for transB in [true, false] {
                    for beta: Float in [0, 1, 0.5] {
                        let lda = s.k + 3, ldb = (transB ? s.k : s.n) + 2, ldc = s.n + 5
                        let a = values(s.m * lda, seed: UInt64(s.m * 31 + s.k))
                        let b = values((transB ? s.n : s.k) * ldb, seed: UInt64(s.n * 17 + s.k))
                        var c = beta == 0 ? [Float](repeating: .nan, count: s.m * ldc) : values(s.m * ldc, seed: 5)
                        var expected = c
                        let c0 = c
                        packedProduct(transB: transB, s, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: &c, ldc: ldc)
                        lk_gemm_bf16_naive(transB ? 1 : 0, s.m, s.n, s.k, a, lda, b, ldb, beta, &expected, ldc)
                        let what = "\(name) \(s.m)×\(s.n)×\(s.k) transB=\(transB) beta=\(beta)"
                        for i in 0..<s.m {
                            for j in 0..<s.n {
                                var magnitude = beta == 0 ? 0 : abs(beta * c0[i * ldc + j])
                                for p in 0..<s.k {
                                    magnitude += abs(lk_bf16_round(a[i * lda + p]) * lk_bf16_round(transB ? b[j * ldb + p] : b[p * ldb + j]))
                                }
                                let tolerance = Float(s.k + 4) * 0x1p-24 * magnitude + 0x1p-24 * abs(expected[i * ldc + j])
                                let got = c[i * ldc + j], want = expected[i * ldc + j]
                                guard abs(got - want) <= tolerance else {
                                    return XCTFail("\(what): C[\(i), \(j)] = \(got), naive \(want) (tolerance \(tolerance))")
                                }
                            }
                            // Past the N columns of a row, the ldc padding is untouched.
                            for j in s.n..<ldc where !(c[i * ldc + j].bitPattern == c0[i * ldc + j].bitPattern) {
                                return XCTFail("\(what): wrote padding C[\(i), \(j)]")
                            }
                        }
                    }
                }
            }
        }
    }

    /// Small integers are exact in bf16 and their sums exact in f32: every path gives exactly
    /// the integer product, whatever the summation order (an independent check of the packing).
    func testIntegerProductsAreExact() {
        defer { _ = lk_isa_set_limit(LK_ISA_AVX512) }
        let (m, n, k) = (19, 101, 203)
        let a = (0..<m * k).map { Float(($0 * 7) % 9) - 4 }, b = (0..<n * k).map { Float(($0 * 5) % 7) - 3 }
        let bt = (0..<k * n).map { b[($0 % n) * k + $0 / n] }  // B [K, N] = (B [N, K])ᵀ
        var want = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for p in 0..<k { want[i * n + j] += a[i * k + p] * b[j * k + p] } } }
        for level in [LK_ISA_SCALAR, LK_ISA_AVX512] {
            _ = lk_isa_set_limit(level)
            var forward = [Float](repeating: 0, count: m * n), gradient = forward
            XCTAssertEqual(lk_gemm_bf16(1, m, n, k, a, k, b, k, 0, &forward, n), 0)
            XCTAssertEqual(lk_gemm_bf16(0, m, n, k, a, k, bt, n, 0, &gradient, n), 0)
            XCTAssertEqual(forward, want, "transB, native=\(lk_gemm_bf16_native())")
            XCTAssertEqual(gradient, want, "B [K, N], native=\(lk_gemm_bf16_native())")
        }
    }

    /// Inputs really are rounded to bf16 (8 significant bits), ties to even.
    func testRoundingToNearestEven() {
        XCTAssertEqual(lk_bf16_round(1), 1)
        XCTAssertEqual(lk_bf16_round(1 + 0x1p-8), 1)                      // tie, down to even
        XCTAssertEqual(lk_bf16_round(1 + 3 * 0x1p-8), 1 + 0x1p-6)         // tie, up to even
        XCTAssertEqual(lk_bf16_round(1 + 0x1p-8 + 0x1p-20), 1 + 0x1p-7)   // above the tie
        XCTAssertEqual(lk_bf16_round(-3.14159), -3.140625)
        XCTAssertEqual(lk_bf16_round(.greatestFiniteMagnitude), .infinity)
        XCTAssertEqual(lk_bf16_round(-.infinity), -.infinity)
        XCTAssertEqual(lk_bf16_round(-0.0).bitPattern, (-0.0 as Float).bitPattern)
        XCTAssertTrue(lk_bf16_round(.nan).isNaN)
        XCTAssertTrue(lk_bf16_round(Float(bitPattern: 0x7F80_0001)).isNaN)  // a NaN whose payload would round to inf
        // 1 + 2⁻¹⁰ is lost: the product of [1 + 2⁻¹⁰] and [1] is 1.
        var c: [Float] = [0]
        XCTAssertEqual(lk_gemm_bf16(1, 1, 1, 1, [1 + 0x1p-10], 1, [1], 1, 0, &c, 1), 0)
        XCTAssertEqual(c, [1])
    }

    /// K = 0: C = beta·C, and beta = 0 clears C even where it held NaN.
    func testEmptyReduction() {
        var c: [Float] = [.nan, 2, 3, 4]
        XCTAssertEqual(lk_gemm_bf16(1, 2, 2, 0, [], 1, [], 1, 0, &c, 2), 0)
        XCTAssertEqual(c, [0, 0, 0, 0])
        c = [1, 2, 3, 4]
        XCTAssertEqual(lk_gemm_bf16(0, 2, 2, 0, [], 1, [], 2, 0.5, &c, 2), 0)
        XCTAssertEqual(c, [0.5, 1, 1.5, 2])
    }
}
