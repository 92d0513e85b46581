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
}
