import Foundation
@testable import TensorCore
import TestSupport
import XCTest

/// Forward values of the fused ops against the naive Double-precision references.
final class OpForwardTests: XCTestCase {
    func testGemmMatchesNaiveTwinForAllTransposesAndOddSizes() {
        for (m, n, k) in [(1, 1, 1), (3, 5, 7), (17, 33, 65), (64, 1, 129)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let a = Fixtures.tensor(transA ? [k, m] : [m, k], seed: 1, requiresGrad: false)
                    let b = Fixtures.tensor(transB ? [n, k] : [k, n], seed: 2, requiresGrad: false)
                    let fast = Fixtures.tensor([m, n], seed: 3, requiresGrad: false)
                    let slow = Tensor(shape: [m, n], scalars: fast.scalars)
                    for (c, f) in [(fast, true), (slow, false)] {
                        let call = f ? gemm : naiveGemm
                        call(transA, transB, m, n, k, 0.5, a.storage.base, transA ? m : k, b.storage.base, transB ? k : n,
                             0.25, c.storage.base, n)
                    }
                    assertClose(fast.scalars, slow.scalars, atol: 1e-5, rtol: 1e-5, "gemm \(m)×\(n)×\(k) tA \(transA) tB \(transB)")
                }
            }
        }
    }

    /// Products large enough to be cut into row or column blocks over the pool: every block
    /// lands where it belongs (padded strides, all transposes), padding columns stay untouched.
    func testGemmSplitOverThePoolMatchesNaiveTwin() {
        for (m, n, k) in [(300, 70, 129), (70, 300, 129), (1024, 16, 576), (16, 576, 1024)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let (lda, ldb, ldc) = ((transA ? m : k) + 3, (transB ? k : n) + 5, n + 2)
                    let a = Fixtures.tensor([transA ? k : m, lda], seed: 1, requiresGrad: false)
                    let b = Fixtures.tensor([transB ? n : k, ldb], seed: 2, requiresGrad: false)
                    let fast = Fixtures.tensor([m, ldc], seed: 3, requiresGrad: false)
                    let slow = Tensor(shape: [m, ldc], scalars: fast.scalars)
                    gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a.storage.base, lda: lda,
                         b: b.storage.base, ldb: ldb, beta: 0.25, c: fast.storage.base, ldc: ldc)
                    naiveGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a.storage.base, lda: lda,
                              b: b.storage.base, ldb: ldb, beta: 0.25, c: slow.storage.base, ldc: ldc)
                    assertClose(fast.scalars, slow.scalars, atol: 1e-4, rtol: 1e-5, "gemm \(m)×\(n)×\(k) tA \(transA) tB \(transB)")
                    for row in 0..<m { for j in n..<ldc { XCTAssertEqual(fast.scalars[row * ldc + j], slow.scalars[row * ldc + j]) } }
                }
            }
        }
    }

    /// gemv on rows `lda` apart (a head inside [T, G, D]), both orientations, against naiveGemm
    /// with a one-column operand.
    func testGemvMatchesNaiveTwinOnStridedRows() {
        for (m, n) in [(1, 1), (3, 5), (17, 64), (130, 33)] {
            let lda = n + 3
            let a = Fixtures.tensor([m, lda], seed: 6, requiresGrad: false)
            for trans in [false, true] {
                let (rowsOut, inner) = trans ? (n, m) : (m, n)
                let x = Fixtures.tensor([inner], seed: 7, requiresGrad: false)
                let fast = Tensor(shape: [rowsOut], scalars: [Float](repeating: .nan, count: rowsOut))
                let slow = Tensor(shape: [rowsOut], scalars: [Float](repeating: 0, count: rowsOut))
                gemv(trans: trans, m: m, n: n, alpha: 0.5, a: a.storage.base, lda: lda, x: x.storage.base, y: fast.storage.base)
                naiveGemm(transA: trans, transB: false, m: rowsOut, n: 1, k: inner, alpha: 0.5, a: a.storage.base, lda: lda,
                          b: x.storage.base, ldb: 1, beta: 0, c: slow.storage.base, ldc: 1)
                assertClose(fast.scalars, slow.scalars, atol: 1e-5, rtol: 1e-5, "gemv \(m)×\(n) trans \(trans)")
            }
        }
    }

    func testMatmulMatchesNaive() {
        let a = Fixtures.tensor([2, 3, 5], seed: 4), b = Fixtures.tensor([5, 4], seed: 5)
        let c = a.matmul(b)
        var expected = [Float]()
        for i in 0..<6 { for j in 0..<4 { expected.append((0..<5).reduce(0) { $0 + a.scalars[i * 5 + $1] * b.scalars[$1 * 4 + j] }) } }
        XCTAssertEqual(c.shape, [2, 3, 4])
        assertClose(c, expected, atol: 1e-5)
    }

    func testBroadcastingArithmetic() {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [3], scalars: [10, 20, 30])
        let col = Tensor(shape: [2, 1], scalars: [2, 4])
        XCTAssertEqual((a + b).scalars, [11, 22, 33, 14, 25, 36])
        XCTAssertEqual((a - col).scalars, [-1, 0, 1, 0, 1, 2])
        XCTAssertEqual((a * col).scalars, [2, 4, 6, 16, 20, 24])
        XCTAssertEqual((a / col).scalars, [0.5, 1, 1.5, 1, 1.25, 1.5])
        XCTAssertEqual((col * b).shape, [2, 3])
    }

    func testReductionsAndShapes() {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(a.sum(axes: [0]).scalars, [5, 7, 9])
        XCTAssertEqual(a.sum(axes: [1], keepDims: true).shape, [2, 1])
        XCTAssertEqual(a.mean().item, 3.5)
        XCTAssertEqual(a.transposed().scalars, [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(a.slice(axis: 1, 1..<3).scalars, [2, 3, 5, 6])
        XCTAssertEqual(Tensor.concat([a, a.slice(axis: 1, 0..<1)], axis: 1).scalars, [1, 2, 3, 1, 4, 5, 6, 4])
        XCTAssertEqual(a.reshaped([3, -1]).shape, [3, 2])
        let w = Tensor(shape: [3, 2], scalars: [0, 1, 10, 11, 20, 21])
        XCTAssertEqual(Tensor.embedding(w, ids: IntTensor(shape: [3], scalars: [2, 0, 2])).scalars, [20, 21, 0, 1, 20, 21])
    }

    func testRMSNormAndSoftmaxMatchNaive() {
        let x = Fixtures.tensor([5, 33], seed: 6, scale: 3), w = Fixtures.tensor([33], seed: 7)
        assertClose(Tensor.rmsNorm(x, weight: w, eps: 1e-5), Naive.rmsNorm(x.scalars, w.scalars, width: 33, eps: 1e-5, offset: 0), atol: 1e-5)
        assertClose(Tensor.rmsNorm(x, weight: w, eps: 1e-6, weightOffset: 1), Naive.rmsNorm(x.scalars, w.scalars, width: 33, eps: 1e-6, offset: 1), atol: 1e-5)
        assertClose(x.softmax(), Naive.softmax(x.scalars, width: 33), atol: 1e-6)
    }

    func testRotaryMatchesNaiveAndRestartsPerSequence() {
        let x = Fixtures.tensor([2, 9, 3, 8], seed: 8)
        let rope = RotaryEmbedding(rotaryDim: 8, base: 10_000)
        let positions = OpGradientTests.positions
        assertClose(x.rotary(rope, positions: positions), Naive.rotary(x, positions: positions.scalars, inverseFrequencies: rope.inverseFrequencies), atol: 1e-5)
        // Position 0 is the identity.
        let y = x.rotary(rope, positions: IntTensor(shape: [2, 9], repeating: 0))
        XCTAssertEqual(y.scalars, x.scalars)
    }

    func testAttentionMatchesNaiveWithSegmentsWindowSoftcapAndGQA() {
        let q = Fixtures.tensor([2, 9, 4, 6], seed: 9, scale: 2), k = Fixtures.tensor([2, 9, 2, 6], seed: 10, scale: 2)
        let v = Fixtures.tensor([2, 9, 2, 6], seed: 11)
        let seg = OpGradientTests.segments
        // Query blocks of 64 (one block here), 4 (a tail of 1), 2 and 1 row.
        for block in [AttentionGeometry.defaultQueryBlock, 4, 2, 1] {
            for (window, cap) in [(nil, nil), (3, nil), (nil, 2.0), (4, 1.5)] as [(Int?, Double?)] {
                let got = Tensor.causalAttention(q: q, k: k, v: v, segments: seg,
                                                 options: AttentionOptions(scale: 0.4, window: window, softcap: cap.map(Float.init)),
                                                 queryBlock: block)
                let want = Naive.attention(q: q, k: k, v: v, segments: seg.scalars, scale: Double(Float(0.4)), window: window, softcap: cap)
                assertClose(got, want, atol: 2e-6, rtol: 1e-5, "block \(block) window \(String(describing: window)) softcap \(String(describing: cap))")
            }
        }
    }

    /// Packed rows must give exactly what the sequences give one by one.
    func testAttentionNeverCrossesSegments() {
        let q = Fixtures.tensor([1, 7, 2, 4], seed: 12), k = Fixtures.tensor([1, 7, 1, 4], seed: 13), v = Fixtures.tensor([1, 7, 1, 4], seed: 14)
        let seg = IntTensor(shape: [1, 7], scalars: [0, 0, 0, 1, 1, 1, 1])
        let packed = Tensor.causalAttention(q: q, k: k, v: v, segments: seg, options: AttentionOptions(scale: 0.5))
        for range in [0..<3, 3..<7] {
            let alone = Tensor.causalAttention(q: q.slice(axis: 1, range), k: k.slice(axis: 1, range), v: v.slice(axis: 1, range),
                                               options: AttentionOptions(scale: 0.5))
            assertClose(packed.slice(axis: 1, range), alone.scalars, atol: 1e-6)
        }
    }

    func testChunkedCrossEntropyMatchesNaiveAtEveryChunking() {
        let hidden = Fixtures.tensor([11, 7], seed: 15, scale: 2), weight = Fixtures.tensor([23, 7], seed: 16)
        let targets = IntTensor(shape: [11], scalars: [1, -100, 22, 0, 5, 5, -1, 9, 13, 2, 17])
        let want = Naive.crossEntropy(hidden: hidden, weight: weight, targets: targets.scalars)
        for (vc, rc) in [(1, 1), (4, 3), (23, 11), (5, 100), (4096, 1024)] {
            let got = Tensor.linearCrossEntropy(hidden: hidden, weight: weight, targets: targets,
                                                chunking: CrossEntropyChunking(vocabChunk: vc, rowChunk: rc))
            XCTAssertEqual(Double(got.item), want, accuracy: 1e-5, "chunks \(vc)×\(rc)")
        }
        let none = Tensor.linearCrossEntropy(hidden: hidden, weight: weight, targets: IntTensor(shape: [11], repeating: -100))
        XCTAssertEqual(none.item, 0, "a batch without trained tokens has zero loss")
    }

    func testDropoutIsSeededAndUnbiased() {
        let x = Tensor(shape: [10_000], scalars: [Float](repeating: 1, count: 10_000))
        var r1 = RandomGenerator(seed: 5), r2 = RandomGenerator(seed: 5)
        let a = x.dropout(probability: 0.25, rng: &r1), b = x.dropout(probability: 0.25, rng: &r2)
        XCTAssertEqual(a.scalars, b.scalars, "same seed, same mask")
        XCTAssertEqual(Double(a.mean().item), 1, accuracy: 0.03)
        let dropped = a.scalars.filter { $0 == 0 }.count
        XCTAssertEqual(Double(dropped) / 10_000, 0.25, accuracy: 0.02)
    }

    /// A slice starting at element k, dropped with offset k, gets exactly the whole tensor's
    /// mask there (a data-parallel rank computing rows of a micro-batch), forward and backward,
    /// at odd offsets and lengths (SIMD bodies and tails).
    func testDropoutOfASliceWithItsOffsetIsTheSliceOfTheDropout() {
        let x = Fixtures.tensor([7, 37], seed: 21)
        var whole = RandomGenerator(seed: 8)
        let all = x.dropout(probability: 0.3, rng: &whole).scalars
        for (start, count) in [(0, 37), (37, 111), (5, 200), (74, 185), (1, 1)] {
            var rng = RandomGenerator(seed: 8)
            let part = Tensor(shape: [count], scalars: Array(x.scalars[start..<start + count]))
            XCTAssertEqual(part.dropout(probability: 0.3, rng: &rng, offset: UInt64(start)).scalars, Array(all[start..<start + count]), "\(start)+\(count)")
            let mask = DropoutMask(probability: 0.3, seed: 0x5EED_0000 &+ UInt64(start), offset: UInt64(start))
            let wholeMask = DropoutMask(probability: 0.3, seed: mask.seed)
            let ones = [Float](repeating: 1, count: 259)
            var dxWhole = [Float](repeating: 0, count: 259), dxPart = [Float](repeating: 0, count: count)
            wholeMask.accumulateGradient(ones, into: &dxWhole, count: 259)
            mask.accumulateGradient(Array(ones.prefix(count)), into: &dxPart, count: count)
            XCTAssertEqual(dxPart, Array(dxWhole[start..<start + count]))
        }
        var other = RandomGenerator(seed: 8)
        XCTAssertNotEqual(Tensor(shape: [37], scalars: Array(x.scalars[37..<74])).dropout(probability: 0.3, rng: &other).scalars, Array(all[37..<74]),
                          "without the offset the slice draws another mask")
    }

    func testDerivedGeneratorsDependOnStateAndKeysOnly() {
        var g = RandomGenerator(seed: 3)
        let before = g.derived(4, 1)
        XCTAssertEqual(g, RandomGenerator(seed: 3), "deriving does not advance")
        XCTAssertEqual(RandomGenerator(seed: 3).derived(4, 1), before)
        _ = g.next()
        XCTAssertNotEqual(g.derived(4, 1), before)
        let keys = [(0, 0), (0, 1), (1, 0), (4, 1), (1, 4)].map { RandomGenerator(seed: 3).derived(UInt64($0.0), UInt64($0.1)).state.0 }
        XCTAssertEqual(Set(keys).count, keys.count)
    }

    func testActivationsMatchFormulas() {
        let x = Fixtures.tensor([101], seed: 17, scale: 6)
        let xs = x.scalars.map(Double.init)
        assertClose(x.silu(), xs.map { Float($0 / (1 + exp(-$0))) }, atol: 1e-6, rtol: 1e-5)
        assertClose(x.geluTanh(), xs.map { Float(0.5 * $0 * (1 + tanh(0.7978845608028654 * ($0 + 0.044715 * $0 * $0 * $0)))) }, atol: 1e-6, rtol: 1e-5)
        let up = Fixtures.tensor([101], seed: 18)
        assertClose(Tensor.swiglu(gate: x, up: up), zip(xs, up.scalars).map { Float($0 / (1 + exp(-$0)) * Double($1)) }, atol: 1e-6, rtol: 1e-5)
        // Stacked: rows of [gate | up], 3 rows of 2 × 17 (no SIMD width divides 17).
        let stacked = Fixtures.tensor([3, 34], seed: 19, scale: 6)
        let (g, u) = (stacked.slice(axis: 1, 0..<17), stacked.slice(axis: 1, 17..<34))
        let want = zip(g.scalars, u.scalars).map { Float(Double($0) / (1 + exp(-Double($0))) * Double($1)) }
        let got = Tensor.swiglu(stacked: stacked)
        XCTAssertEqual(got.shape, [3, 17])
        assertClose(got, want, atol: 1e-6, rtol: 1e-5)
    }
}
