@testable import TensorCore
import TestSupport
import XCTest

/// A checkpointed block gives the gradients of the plain graph while keeping none of its
/// intermediates, and replays its random state rather than drawing new masks.
final class CheckpointTests: XCTestCase {
    /// A two-layer block with dropout, whose generator lives outside like a LoRA layer's.
    final class Block {
        let w1 = Fixtures.tensor([5, 4], seed: 11)
        let w2 = Fixtures.tensor([4, 5], seed: 12)
        var rng = RandomGenerator(seed: 7)
        func callAsFunction(_ x: Tensor) -> Tensor {  // x [N, 4] → [N, 4]
            let h = x.matmul(w1, transposeB: true).silu().dropout(probability: 0.3, rng: &rng)  // [N, 5]
            return x + h.matmul(w2, transposeB: true)
        }
    }

    func gradients(checkpoint: Bool, rewindsDropout: Bool = true) -> (loss: Float, grads: [[Float]], rng: RandomGenerator) {
        let block = Block()
        let x0 = Fixtures.tensor([6, 4], seed: 13)
        let x = x0.scaled(by: 1.5)  // a recorded input, so dx flows through the checkpoint too
        let y: Tensor
        if checkpoint {
            let saved = block.rng
            y = Tensor.checkpointed(x, parameters: [block.w1, block.w2], rewind: { if rewindsDropout { block.rng = saved } }) { block($0) }
            XCTAssertTrue(y.requiresGrad)
        } else {
            y = block(x)
        }
        let loss = (y * y).sum()
        let store = loss.backward()
        let grads = [x0, block.w1, block.w2].map { store[$0]?.scalars ?? [] }
        return (loss.item, grads, block.rng)
    }

    func testCheckpointedBlockHasThePlainGraphsGradients() {
        let plain = gradients(checkpoint: false), checkpointed = gradients(checkpoint: true)
        XCTAssertEqual(plain.loss, checkpointed.loss)
        for (p, c) in zip(plain.grads, checkpointed.grads) {
            XCTAssertFalse(p.isEmpty)
            XCTAssertEqual(p.count, c.count)
            for (a, b) in zip(p, c) { XCTAssertEqual(a, b, accuracy: 1e-6 * max(1, abs(a))) }
        }
        XCTAssertEqual(plain.rng, checkpointed.rng, "the replay ends where the first run ended")
    }

    func testWithoutRewindTheReplayDrawsOtherMasks() {
        let plain = gradients(checkpoint: false), unrewound = gradients(checkpoint: true, rewindsDropout: false)
        XCTAssertNotEqual(plain.grads[1], unrewound.grads[1], "the test must be able to see a redrawn mask")
    }

    func testCheckpointKeepsNoIntermediateOfTheBlock() {
        let block = Block()
        let x = Fixtures.tensor([6, 4], seed: 13)
        let y = Tensor.checkpointed(x, parameters: [block.w1, block.w2], rewind: {}) { block($0) }
        XCTAssertEqual(y.topologicalOrder().compactMap { $0.node?.op }, ["checkpoint"], "only the checkpoint op is recorded")
    }

    func testOutsideGradientModeItIsThePlainBlock() {
        let block = Block()
        let x = Fixtures.tensor([6, 4], seed: 13, requiresGrad: false)
        let y = noGrad { Tensor.checkpointed(x, parameters: [block.w1, block.w2], rewind: {}) { block($0) } }
        XCTAssertFalse(y.requiresGrad)
    }

    /// A frozen base that counts the weight rows it decodes.
    final class CountingBase: FrozenLinear {
        let weight = Fixtures.tensor([5, 7], seed: 21, requiresGrad: false)  // [O, I]
        var decodedRows = 0
        var inputFeatures: Int { 7 }
        var outputFeatures: Int { 5 }
        var followsComputeDType: Bool { false }
        var panelRows: Int { 2 }
        var bias: Tensor? { nil }
        var storedWeight: UnsafePointer<Float>? { nil }
        func decodeWeightRows(_ rows: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
            decodedRows += rows.count
            destination.update(from: weight.storage.base + rows.lowerBound * 7, count: rows.count * 7)
        }
        func weightMatvec(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
            gemv(trans: false, m: 5, n: 7, a: weight.storage.base, lda: 7, x: x, y: y)
        }
        func forward(_ x: Tensor) -> Tensor { Tensor.linearGroup(x, [groupMember()]) }
    }

    /// Products kept from the first run (`KeptProducts`) replace the recomputation's: the
    /// base's weight is decoded once instead of twice (the block's input is data, so no dx
    /// needs it again), and the adapters' gradients are bit-identical to recomputing. A budget
    /// with room for one of the two products keeps the first only.
    func testRecomputationTakesTheProductsTheFirstRunKept() {
        let (a1, b1) = (Fixtures.tensor([2, 7], seed: 22), Fixtures.tensor([5, 2], seed: 23))
        let (a2, b2) = (Fixtures.tensor([3, 7], seed: 24), Fixtures.tensor([5, 3], seed: 25))
        let x = Fixtures.tensor([4, 7], seed: 26, requiresGrad: false)  // 4 rows: a product is 4·5 floats
        func run(budget: Int?) -> (decoded: Int, kept: Int, grads: [[Float]]) {
            let (base1, base2) = (CountingBase(), CountingBase())
            let keeper = budget.map { KeptProducts.Budget(bytes: $0) }
            let y = KeptProducts.$budget.withValue(keeper) {
                Tensor.checkpointed(x, parameters: [a1, b1, a2, b2], rewind: {}) { input in
                    let h = Tensor.linearGroup(input, [LinearGroupMember(base: base1, adapter: LowRankUpdate(a: a1, b: b1, scale: 0.5, mask: nil))])
                    let z = Tensor.linearGroup(input, [LinearGroupMember(base: base2, adapter: LowRankUpdate(a: a2, b: b2, scale: 2, mask: nil))])
                    return (h.tanh() * z).sum()
                }
            }
            let store = y.backward()
            return (base1.decodedRows + base2.decodedRows, keeper?.used ?? 0, [a1, b1, a2, b2].map { store[$0]?.scalars ?? [] })
        }
        let recomputed = run(budget: nil), kept = run(budget: 1 << 20), half = run(budget: 4 * 5 * 4)
        XCTAssertEqual(recomputed.decoded, 2 * 2 * 5, "each base decoded in the first run and again in the recomputation")
        XCTAssertEqual(kept.decoded, 2 * 5, "only the first run decodes")
        XCTAssertEqual(kept.kept, 2 * 4 * 5 * 4)
        XCTAssertEqual(half.decoded, 5 + 2 * 5, "the first product kept, the second recomputed")
        XCTAssertEqual(half.kept, 4 * 5 * 4)
        XCTAssertEqual(kept.grads, recomputed.grads)
        XCTAssertEqual(half.grads, recomputed.grads)
        XCTAssertTrue(recomputed.grads.allSatisfy { !$0.isEmpty && $0.contains { $0 != 0 } })
    }
}
