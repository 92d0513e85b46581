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
        // Each vocabulary chunk decoded once in forward and once in backward.
        XCTAssertEqual(decoded, [0..<10, 10..<20, 20..<30, 30..<37, 0..<10, 10..<20, 20..<30, 30..<37])
    }
}
