import TensorCore
import TestSupport
import XCTest

/// The frozen-head loss (head rows decoded chunk by chunk) is the dense loss's twin.
final class FrozenHeadCrossEntropyTests: XCTestCase {
    func testFrozenHeadMatchesDenseHeadInValueAndInputGradient() throws {
        let (n, c, v) = (13, 8, 37)
        let weight = Fixtures.tensor([v, c], seed: 1, requiresGrad: false)
        var targets = Fixtures.ints([n], upper: v, seed: 2)
        targets.scalars[3] = -1
        targets.scalars[9] = -1
        let chunking = CrossEntropyChunking(vocabChunk: 10, rowChunk: 4)

        let h1 = Fixtures.tensor([n, c], seed: 3)
        let dense = Tensor.linearCrossEntropy(hidden: h1, weight: weight, targets: targets, chunking: chunking)
        let g1 = dense.backward()
        let h2 = h1.detached(requiresGrad: true)
        let base = weight.storage.base
        var decoded: [Range<Int>] = []
        let frozen = Tensor.linearCrossEntropy(hidden: h2, frozenVocabulary: v, decodeRows: { range, destination in
            decoded.append(range)
            destination.update(from: base + range.lowerBound * c, count: range.count * c)
        }, targets: targets, chunking: chunking)
        let g2 = frozen.backward()
        XCTAssertEqual(dense.item, frozen.item, accuracy: 1e-6)
        assertClose(try XCTUnwrap(g2[h2]), try XCTUnwrap(g1[h1]).scalars, atol: 1e-6)
        // Each vocabulary chunk decoded once: the input gradient is accumulated in forward.
        XCTAssertEqual(decoded, [0..<10, 10..<20, 20..<30, 30..<37])
        // A seed other than 1 (a loss scaled before backward) scales that gradient.
        let h3 = h1.detached(requiresGrad: true)
        let halved = Tensor.linearCrossEntropy(hidden: h3, frozenVocabulary: v, decodeRows: { range, destination in
            destination.update(from: base + range.lowerBound * c, count: range.count * c)
        }, targets: targets, chunking: chunking).scaled(by: 0.5)
        let g3 = halved.backward()
        assertClose(try XCTUnwrap(g3[h3]), try XCTUnwrap(g1[h1]).scalars.map { 0.5 * $0 }, atol: 1e-6)
    }

    /// Gemma 2's soft-capped head: the value is the naive capped loss, the gradient finite
    /// differences' (a cap of 2 on logits of a few units makes tanh's curvature matter).
    func testSoftCappedLossMatchesNaiveValueAndFiniteDifferences() throws {
        let (n, c, v) = (7, 6, 23)
        let weight = Fixtures.tensor([v, c], seed: 4, requiresGrad: false).scaled(by: 2)
        var targets = Fixtures.ints([n], upper: v, seed: 5)
        targets.scalars[2] = -1
        let chunking = CrossEntropyChunking(vocabChunk: 8, rowChunk: 3)
        let base = weight.storage.base
        func loss(_ h: Tensor, cap: Float?) -> Tensor {
            Tensor.linearCrossEntropy(hidden: h, frozenVocabulary: v, decodeRows: { range, destination in
                destination.update(from: base + range.lowerBound * c, count: range.count * c)
            }, targets: targets, softcap: cap, chunking: chunking)
        }
        let h = Fixtures.tensor([n, c], seed: 6)
        let capped = Double(loss(h, cap: 2).item)
        XCTAssertEqual(capped, Naive.crossEntropy(hidden: h, weight: weight, targets: targets.scalars, softcap: 2), accuracy: 1e-5)
        XCTAssertGreaterThan(abs(capped - Double(loss(h, cap: nil).item)), 0.05, "the cap must change the loss here")
        assertGradientsMatch([h], epsilon: 1e-2) { inputs in loss(inputs[0], cap: 2) }
    }

    /// Under `ComputeDType.bf16` the frozen head multiplies bf16-rounded hidden states and
    /// weights with f32 sums: the loss is the naive loss of the rounded operands, and the input
    /// gradient stays within bf16's error of the f32 one (and is not it: the path is taken).
    func testBF16HeadIsTheLossOfRoundedOperands() throws {
        let (n, c, v) = (11, 40, 53)
        let weight = Fixtures.tensor([v, c], seed: 7, requiresGrad: false)
        var targets = Fixtures.ints([n], upper: v, seed: 8)
        targets.scalars[4] = -1
        let chunking = CrossEntropyChunking(vocabChunk: 16, rowChunk: 5)
        let base = weight.storage.base
        func loss(_ h: Tensor) -> Tensor {
            Tensor.linearCrossEntropy(hidden: h, frozenVocabulary: v, decodeRows: { range, destination in
                destination.update(from: base + range.lowerBound * c, count: range.count * c)
            }, targets: targets, chunking: chunking)
        }
        func rounded(_ t: Tensor) -> Tensor {
            Tensor(shape: t.shape, scalars: t.scalars.map { x in
                let bits = x.bitPattern
                return Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
            })
        }
        let h32 = Fixtures.tensor([n, c], seed: 9), h16 = h32.detached(requiresGrad: true)
        let l32 = loss(h32), g32 = try XCTUnwrap(l32.backward()[h32]).scalars
        let l16 = withComputeDType(.bf16) { loss(h16) }
        let g16 = try XCTUnwrap(l16.backward()[h16]).scalars
        let naive = Naive.crossEntropy(hidden: rounded(h32), weight: rounded(weight), targets: targets.scalars)
        XCTAssertEqual(Double(l16.item), naive, accuracy: 1e-5)
        XCTAssertGreaterThan(abs(Double(l32.item) - naive), 1e-5, "f32 and bf16 losses must differ here")
        let largest = g32.map(abs).max() ?? 0
        XCTAssertNotEqual(g16, g32)
        for (a, b) in zip(g16, g32) { XCTAssertEqual(a, b, accuracy: 0.02 * largest) }
    }
}
